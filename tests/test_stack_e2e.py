"""The README's main job end to end: `scripts/stack.py` brings up MLflow + service + scheduler on
free loopback ports, /extract answers from the champion, and SIGINT (Ctrl-C) leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_in_groups(pgids: set[int]) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,pgid="], capture_output=True, text=True).stdout
    return {int(p) for p, g in (line.split() for line in out.splitlines()) if int(g) in pgids}


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def test_stack_comes_up_answers_and_stops_cleanly(tmp_path):
    mlflow_port, service_port = free_port(), free_port()
    env = {
        **os.environ,
        "SCINER_POLL_SECONDS": "2",
        "SCINER_RETRAIN_INTERVAL_MINUTES": "600",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("SCINER_MODEL_URI", "SCINER_MLFLOW_TRACKING_URI", "SCINER_HOME"):
        env.pop(key, None)
    cmd = [
        sys.executable,
        "scripts/stack.py",
        "--home",
        str(tmp_path / "var"),
        "--mlflow-port",
        str(mlflow_port),
        "--service-port",
        str(service_port),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "sciner is up" in line:
                break
        assert any("sciner is up" in x for x in lines), "".join(lines[-40:])
        # the started children each lead their own process group
        children = {int(x.split("pid ")[1].split(")")[0]) for x in lines if "(pid " in x and "started" in x}
        assert len(children) == 3, "".join(lines)

        # the README's example: the quickstart champion (data/seed/recipe.env) finds exactly what the README shows
        from tests.test_readme import readme_example

        text, shown = readme_example()
        expected = [(e["start"], e["end"], e["text"], e["label"]) for e in shown]
        status, body = post(f"http://127.0.0.1:{service_port}/extract", {"text": text})
        assert status == 200 and body["model_version"]
        assert [(e["start"], e["end"], e["text"], e["label"]) for e in body["entities"]] == expected, body
        # ... and so does the README's `sciner predict --text` right after `make run` (the serving model by default)
        predict = subprocess.run(
            [str(Path(sys.executable).with_name("sciner")), "predict", "--text", text],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **env,
                "SCINER_HOME": str(tmp_path / "var"),
                "SCINER_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            },
        )
        assert predict.returncode == 0, predict.stderr[-2000:]
        line = json.loads(predict.stdout)
        assert [(e["start"], e["end"], e["text"], e["label"]) for e in line["entities"]] == expected
        with urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health", timeout=5) as resp:
            assert resp.status == 200

        import psutil

        tree = psutil.Process(proc.pid).children(recursive=True)
        assert len(tree) >= 4  # mlflow, service (+ its workers), scheduler
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired as e:  # say what is still running, and what the stack said
            alive = [f"{p.pid} {' '.join(p.cmdline())[:100]}" for p in tree if p.is_running()]
            pytest.fail(f"no exit 90 s after SIGINT; still running: {alive}; stack output:\n{e.output}")
        assert proc.returncode == 0, out
        assert "all stopped" in out and out.count("stopped after") == 3, out
        time.sleep(1)
        assert pids_in_groups(children) == set(), "processes left behind"
        assert [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == [], "orphans left"
        for port in (mlflow_port, service_port):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
    finally:
        if proc.poll() is None:  # a failed check: stop the stack and everything it started
            import psutil

            leftovers = psutil.Process(proc.pid).children(recursive=True)
            proc.kill()
            proc.wait()
            for child in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
