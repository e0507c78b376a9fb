"""The one MLflow launcher of the tests and benchmarks (`make run` shares its command line), on loopback."""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service.mlflow_process import ServerDidNotStart, mlflow_server, mlflow_server_command, start_mlflow_server
from service.process import HOST, process_tree


def test_the_command_serves_the_store_on_loopback_with_one_worker(tmp_path: Path) -> None:
    cmd = mlflow_server_command(tmp_path, 5999)
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path / "artifacts")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5999"
    assert cmd[cmd.index("--workers") + 1] == "1"
    assert mlflow_server_command(tmp_path, 5999, ["/venv/bin/mlflow"])[:2] == ["/venv/bin/mlflow", "server"]


def test_a_relative_store_is_served_from_where_it_lies_not_from_a_copy_inside_itself(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the server's working directory is the store: relative paths would nest
    cmd = mlflow_server_command(Path("var/ml"), 5999)
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'var/ml/mlflow.db'}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path / "var/ml/artifacts")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def test_a_server_answers_inside_the_block_and_is_gone_after_it(tmp_path: Path) -> None:
    with mlflow_server(tmp_path) as url:
        assert url.startswith(f"http://{HOST}:")
        assert answers(url)
        assert (tmp_path / "mlflow.db").is_file()
    deadline = time.monotonic() + 10
    while answers(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(url)


def test_a_server_that_cannot_bind_fails_at_once_with_its_log_and_leaves_nothing_running(tmp_path: Path) -> None:
    before = process_tree(os.getpid())
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ServerDidNotStart) as failure:
            start_mlflow_server(tmp_path, timeout=240, port=port)
        # it failed because the server exited, not because the 240 s ran out
        assert time.monotonic() - started < 200
    message = str(failure.value)
    assert "exited with" in message
    assert "address already in use" in message.lower() or "errno 98" in message.lower()
    assert process_tree(os.getpid()) <= before  # no server, and no worker of it, left running
