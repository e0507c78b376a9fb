"""Start and stop a real MLflow tracking server (sqlite backend, local artifacts) on loopback.

One launcher for the tests and the benchmarks: the same command line, the same health wait (which
fails at once, with the server's log, when the server exits), the same stop (the whole process group,
so uvicorn's workers go too); and the MLflow image's own entrypoint with authentication, for the tests and
the benchmark of basic-auth. ``scripts/stack.py`` (``make run``) shares the command line; it supervises
and restarts its children itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.process import HOST, free_port, stop_process_group

ENTRYPOINT = Path(__file__).resolve().parents[1] / "mlflow" / "docker-entrypoint.sh"
START_TIMEOUT_S = 300.0  # importing the server takes minutes on a loaded 2-core box
LOG_TAIL_CHARS = 3000


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not answer ``/health`` in time; the message ends with its log."""


def mlflow_server_command(store: Path, port: int, program: list[str] | None = None) -> list[str]:
    """``mlflow server`` over ``<store>/mlflow.db`` and ``<store>/artifacts``, on loopback, one worker; the paths
    are absolute (the server runs inside ``store``, where a relative one would name ``store/store``)."""
    store = store.resolve()
    return [
        *(program or [sys.executable, "-m", "mlflow"]),
        "server",
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination",
        str(store / "artifacts"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.is_file() else "(no log)"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Poll ``<url>/health`` until it answers 200; :class:`ServerDidNotStart` if ``proc`` exits first or
    ``timeout`` passes (the caller stops ``proc``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise ServerDidNotStart(f"{url} exited with {proc.returncode}:\n{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise ServerDidNotStart(f"{url} did not answer /health in {timeout:.0f} s:\n{log_tail(log_path)}")
        time.sleep(0.5)


def start_mlflow_server(
    store: Path, timeout: float = START_TIMEOUT_S, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A healthy server over ``store`` (log in ``<store>/mlflow.log``) and its URL; stop it with
    :func:`service.process.stop_process_group`. Nothing is left running when it fails to start."""
    store.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "PYTHONUNBUFFERED": "1"}
    return _start_healthy(mlflow_server_command(store, port), env, store / "mlflow.log", port, timeout, cwd=store)


def _start_healthy(
    command: list[str], env: dict[str, str], log_path: Path, port: int, timeout: float, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``command`` in its own process group (output to ``log_path``) and wait for ``/health`` on
    ``port``; stopped again if it does not answer."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        wait_healthy(url, proc, log_path, timeout)
    except BaseException:
        stop_process_group(proc, grace=10)
        raise
    return proc, url


def start_auth_entrypoint(
    root: Path, admin_password: str, timeout: float = START_TIMEOUT_S, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """The MLflow image's own start, ``mlflow/docker-entrypoint.sh`` (basic-auth app, sqlite store, one
    worker), over ``root`` on a loopback port: a healthy server and its URL (log in ``<root>/server.log``,
    rendered ``basic_auth.ini`` under ``<root>/mlflow-auth/``). ``env``: more of the entrypoint's variables."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": str(root / "artifacts"),
        "MLFLOW_WORKERS": "1",
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "local-secret-key",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "LISTEN_HOST": HOST,
        "LISTEN_PORT": str(port),
        "TMPDIR": str(root),
        **env,
    }
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_CONFIG_PATH"):
        full_env.pop(key, None)
    command = [shutil.which("sh") or "/bin/sh", str(ENTRYPOINT)]
    return _start_healthy(command, full_env, root / "server.log", port, timeout)


@contextmanager
def mlflow_server(store: Path, timeout: float = START_TIMEOUT_S) -> Iterator[str]:
    """``with mlflow_server(tmp) as url:`` — the server's URL while the block runs; stopped after it."""
    proc, url = start_mlflow_server(store, timeout)
    try:
        yield url
    finally:
        stop_process_group(proc)
