"""MLflow with authentication, as the image runs it: ``mlflow/docker-entrypoint.sh`` (basic-auth app,
user store beside the backend store) on a loopback port, ``mlflow/accounts.py`` creating sciner's
accounts, then sciner's own registry code with each account's credentials from MLflow's standard
environment variables: the retrainer registers versions and moves aliases; the API's account reads
the alias and downloads the version but cannot move aliases, register, or delete; no credentials → 401."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service.mlflow_process import start_auth_entrypoint
from service.process import stop_process_group

pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF (pip install mlflow[auth])")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
ADMIN_PW = "admin-password-for-tests-0123"
RETRAINER_PW = "retrainer-password-for-tests-01"
API_PW = "api-password-for-tests-0123456"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-auth")
    proc, url = start_auth_entrypoint(root, ADMIN_PW, timeout=180)
    try:
        ini = root / "mlflow-auth" / "basic_auth.ini"
        assert ini.stat().st_mode & 0o077 == 0  # the rendered ini (user store URI) is private
        assert "auth_cache_ttl_seconds = 60" in ini.read_text()  # a checked password is trusted for 60 s
        yield url, root
    finally:
        stop_process_group(proc, grace=10)


def run_accounts(url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": ADMIN_PW,
        "SCINER_RETRAINER_MLFLOW_PASSWORD": RETRAINER_PW,
        "SCINER_API_MLFLOW_PASSWORD": API_PW,
        **extra,
    }
    return subprocess.run(
        [sys.executable, str(REPO / "mlflow" / "accounts.py")], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def accounts(mlflow_server):
    url, _ = mlflow_server
    proc = run_accounts(url)
    assert proc.returncode == 0, proc.stderr
    assert "sciner-retrainer: created" in proc.stderr and "sciner-api: created" in proc.stderr
    again = run_accounts(url)  # idempotent: passwords set again, grants re-applied
    assert again.returncode == 0 and "password set" in again.stderr, again.stderr
    return url


def as_account(monkeypatch, user: str | None, password: str | None) -> None:
    for key, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def test_without_credentials_the_registry_answers_401(accounts):
    req = urllib.request.Request(f"{accounts}/api/2.0/mlflow/registered-models/get?name=sciner")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 401
    with urllib.request.urlopen(f"{accounts}/health", timeout=10) as r:  # probes stay open
        assert r.status == 200


def test_retrainer_registers_and_promotes_the_api_only_reads(accounts, tiny_model_dir, tmp_path, monkeypatch):
    from sciner.registry import RegistryError, alias_version, fetch_model_dir, register_model_dir, set_alias
    from sciner.settings import Settings

    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri=accounts)

    as_account(monkeypatch, "sciner-retrainer", RETRAINER_PW)
    version = register_model_dir(settings, tiny_model_dir, run_name="auth-test").version
    set_alias(settings, settings.champion_alias, version, kind="bootstrap")
    set_alias(settings, settings.challenger_alias, version)

    as_account(monkeypatch, "sciner-api", API_PW)
    champion = alias_version(settings)
    assert champion is not None and champion.version == version
    folder = fetch_model_dir(settings, version, tmp_path / "serving")
    assert (folder / "sciner.json").is_file()
    with pytest.raises(RegistryError, match=r"403|PERMISSION_DENIED"):
        set_alias(settings, settings.champion_alias, version)
    with pytest.raises(RegistryError, match=r"403|PERMISSION_DENIED"):
        register_model_dir(settings, tiny_model_dir, run_name="not-allowed")

    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=accounts)
    for attempt in (
        lambda: client.delete_registered_model_alias("sciner", "champion"),
        lambda: client.delete_registered_model("sciner"),
        lambda: client.create_registered_model("sciner"),  # the name exists: it cannot be claimed
    ):
        with pytest.raises(MlflowException):
            attempt()
    assert client.get_model_version_by_alias("sciner", "champion").version == version

    as_account(monkeypatch, "sciner-api", "wrong-password-0123456789")
    with pytest.raises(MlflowException, match=r"401|UNAUTHENTICATED"):
        client.get_model_version_by_alias("sciner", "champion")


def test_accounts_refuses_short_passwords_and_missing_admin_credentials(mlflow_server):
    url, _ = mlflow_server
    short = run_accounts(url, SCINER_API_MLFLOW_PASSWORD="short")
    assert short.returncode != 0 and "at least 16" in short.stderr
    anonymous = run_accounts(url, MLFLOW_TRACKING_USERNAME="")
    assert anonymous.returncode != 0 and "admin" in anonymous.stderr
