#!/bin/sh
# Start the MLflow tracking server with proxied artifacts and, by default, MLflow's own
# authentication app (basic-auth: HTTP basic credentials, per-resource permissions).
#
# Configuration (read by the mlflow CLI itself, so credentials never appear in argv):
#   MLFLOW_BACKEND_STORE_URI       required, e.g. postgresql://mlflow:<pw>@postgres:5432/mlflow
#   MLFLOW_ARTIFACTS_DESTINATION   default /mlartifacts (a volume), or s3://bucket/prefix
#   MLFLOW_WORKERS                 uvicorn workers, default 2
#   MLFLOW_SERVER_ALLOWED_HOSTS    Host headers to accept (besides /health)
#   LISTEN_HOST / LISTEN_PORT      default 0.0.0.0 / 5000
# Authentication (MLFLOW_AUTH=true, the default; see mlflow/README.md, "Accounts"):
#   MLFLOW_AUTH_ADMIN_USERNAME     default admin; the admin account is created on the first start
#   MLFLOW_AUTH_ADMIN_PASSWORD     required on the first start (later ignored: rotate via the API)
#   MLFLOW_FLASK_SERVER_SECRET_KEY required: CSRF key of the auth app, the same on every replica
#   MLFLOW_AUTH_DATABASE_URI       the user store; default the backend store (own tables)
#   MLFLOW_AUTH_DEFAULT_PERMISSION permission of an account on resources without a grant (READ)
#   MLFLOW_AUTH_CACHE_SECONDS      how long a worker trusts a checked password (default 60; 0: check
#                                  the password hash on every request, MLflow's own default)
#   MLFLOW_AUTH_CONFIG_PATH        a complete basic_auth.ini of your own instead of the above
# Extra arguments are appended to `mlflow server`.
set -eu

if [ -z "${MLFLOW_BACKEND_STORE_URI:-}" ]; then
    echo "MLFLOW_BACKEND_STORE_URI is not set (postgresql://user:password@host:5432/db)" >&2
    exit 64
fi
export MLFLOW_ARTIFACTS_DESTINATION="${MLFLOW_ARTIFACTS_DESTINATION:-/mlartifacts}"
export MLFLOW_WORKERS="${MLFLOW_WORKERS:-2}"
# The server otherwise starts a pool of job-execution workers we do not use.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

if [ "${MLFLOW_AUTH:-true}" = "true" ]; then
    if [ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]; then
        echo "MLFLOW_FLASK_SERVER_SECRET_KEY is not set (the auth app's CSRF key; or MLFLOW_AUTH=false)" >&2
        exit 64
    fi
    export MLFLOW_AUTH_ADMIN_USERNAME="${MLFLOW_AUTH_ADMIN_USERNAME:-admin}"
    if [ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]; then
        # The ini holds the user store's URI (with its password): write it where only we can read it.
        dir="${TMPDIR:-/tmp}/mlflow-auth"
        umask 077
        mkdir -p "$dir"
        ini="$dir/basic_auth.ini"
        # configparser reads % as interpolation: double it (URL-encoded passwords)
        uri=$(printf '%s' "${MLFLOW_AUTH_DATABASE_URI:-$MLFLOW_BACKEND_STORE_URI}" | sed 's/%/%%/g')
        {
            echo "[mlflow]"
            echo "default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}"
            printf 'database_uri = %s\n' "$uri"
            echo "authorization_function = mlflow.server.auth:authenticate_request_basic_auth"
            echo "auth_cache_ttl_seconds = ${MLFLOW_AUTH_CACHE_SECONDS:-60}"
        } > "$ini"
        umask 022
        export MLFLOW_AUTH_CONFIG_PATH="$ini"
    fi
    set -- --app-name basic-auth "$@"
fi

# Kubernetes service links would inject MLFLOW_PORT=tcp://..., which the CLI reads as --port:
# pass host and port explicitly.
exec mlflow server --host "${LISTEN_HOST:-0.0.0.0}" --port "${LISTEN_PORT:-5000}" --serve-artifacts "$@"
