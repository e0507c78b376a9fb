#!/bin/bash
# Runs once, when the data directory is initialised (empty PVC). Creates one role and one
# database per consumer; passwords come from the postgres-credentials Secret.
# Password rotation later: ALTER ROLE ... PASSWORD ... and update the URI Secrets.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v mlflow_password="$MLFLOW_DB_PASSWORD" \
  -v sciner_password="$SCINER_DB_PASSWORD" <<'EOSQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE ROLE sciner LOGIN PASSWORD :'sciner_password';
CREATE DATABASE sciner OWNER sciner;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE sciner FROM PUBLIC;
EOSQL
