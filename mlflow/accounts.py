#!/usr/bin/env python3
"""Create or update sciner's MLflow accounts and their permissions (idempotent; run as the admin).

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \\
    MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=<admin password> \\
    SCINER_RETRAINER_MLFLOW_PASSWORD=<pw> SCINER_API_MLFLOW_PASSWORD=<pw> \\
    python mlflow/accounts.py [--model sciner] [--experiment sciner]

On Kubernetes it ships in the MLflow image (``/usr/local/bin/sciner-mlflow-accounts``) and runs
there with ``kubectl exec`` (docs/deploy.md). Accounts:

* ``sciner-retrainer`` — MANAGE on the registered model (register versions, move ``champion`` and
  ``challenger``) and on the experiment (log runs and artifacts).
* ``sciner-api`` — READ on both: follows the alias and downloads versions; every write to them is
  refused (403). The server's ``default_permission`` (READ) gives the same on anything else.

The registered model and the experiment are created here, by the admin, if they do not exist:
MLflow lets any account create a registered model and makes its creator a manager, so a name
left free could be claimed by the read-only account.

Running it again sets the passwords given (that is how they are rotated) and re-applies the grants.
A password left unset keeps that account as it is.
"""

from __future__ import annotations

import argparse
import os
import sys

RETRAINER = "sciner-retrainer"
API = "sciner-api"
RETRAINER_PASSWORD_ENV = "SCINER_RETRAINER_MLFLOW_PASSWORD"
API_PASSWORD_ENV = "SCINER_API_MLFLOW_PASSWORD"
MIN_PASSWORD_CHARS = 16

# account → permission on the registered model and on the experiment
GRANTS = {RETRAINER: "MANAGE", API: "READ"}


def ensure_user(auth, username: str, password: str | None) -> str:  # noqa: ANN001 - AuthServiceClient
    from mlflow.exceptions import RestException

    try:
        auth.get_user(username)
    except RestException:
        if password is None:
            raise SystemExit(f"{username} does not exist yet: set its password in the environment") from None
        auth.create_user(username, password)
        return "created"
    if password is None:
        return "kept"
    auth.update_user_password(username, password)
    return "password set"


def ensure_resources(client, model: str, experiment: str) -> str:  # noqa: ANN001 - MlflowClient
    """Create the registered model and the experiment (as the admin) if missing; the experiment id."""
    from mlflow.exceptions import RestException

    try:
        client.get_registered_model(model)
    except RestException:
        client.create_registered_model(model, description="sciner NER models; see mlflow/REVIEW.md")
    found = client.get_experiment_by_name(experiment)
    return found.experiment_id if found is not None else client.create_experiment(experiment)


def grant(auth, username: str, resource_type: str, resource_id: str, permission: str) -> None:  # noqa: ANN001
    """Set the user's permission on the resource (replacing an existing grant)."""
    from mlflow.exceptions import RestException

    try:
        auth.grant_user_permission(username, resource_type, resource_id, permission)
    except RestException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(username, resource_type, resource_id)
        auth.grant_user_permission(username, resource_type, resource_id, permission)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"))
    ap.add_argument("--model", default=os.environ.get("SCINER_REGISTERED_MODEL_NAME", "sciner"))
    ap.add_argument("--experiment", default=os.environ.get("SCINER_EXPERIMENT_NAME", "sciner"))
    args = ap.parse_args()
    if not os.environ.get("MLFLOW_TRACKING_USERNAME") or not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        raise SystemExit("set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD to the MLflow admin account")
    passwords = {RETRAINER: os.environ.get(RETRAINER_PASSWORD_ENV), API: os.environ.get(API_PASSWORD_ENV)}
    for user, password in passwords.items():
        if password is not None and len(password) < MIN_PASSWORD_CHARS:
            raise SystemExit(f"the password of {user} must have at least {MIN_PASSWORD_CHARS} characters")

    from mlflow.server import get_app_client

    from mlflow import MlflowClient

    auth = get_app_client("basic-auth", tracking_uri=args.tracking_uri)
    client = MlflowClient(tracking_uri=args.tracking_uri)
    experiment_id = ensure_resources(client, args.model, args.experiment)
    for user, permission in GRANTS.items():
        state = ensure_user(auth, user, passwords[user])
        grant(auth, user, "registered_model", args.model, permission)
        grant(auth, user, "experiment", experiment_id, permission)
        print(f"{user}: {state}; {permission} on registered model {args.model!r} and experiment "
              f"{args.experiment!r}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
