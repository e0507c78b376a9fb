#!/bin/sh
# Start the MLflow tracking server with proxied artifacts.
#
# Configuration (read by the mlflow CLI itself, so credentials never appear in argv):
#   MLFLOW_BACKEND_STORE_URI       required, e.g. postgresql://mlflow:<pw>@postgres:5432/mlflow
#   MLFLOW_ARTIFACTS_DESTINATION   default /mlartifacts (a volume), or s3://bucket/prefix
#   MLFLOW_WORKERS                 uvicorn workers, default 2
#   MLFLOW_SERVER_ALLOWED_HOSTS    Host headers to accept (besides /health)
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
# Kubernetes service links would inject MLFLOW_PORT=tcp://..., which the CLI reads as --port:
# pass host and port explicitly.
exec mlflow server --host 0.0.0.0 --port 5000 --serve-artifacts "$@"
