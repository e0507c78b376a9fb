"""The local stack keeps its children alive: a child that exits (even with code 0, as ``mlflow
server`` does when its server process is killed) is restarted after a back-off with a WARNING
naming it, and one that keeps dying stops the stack with a non-zero exit naming it. Real child
processes, short-lived ones standing in for MLflow."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_stack():
    spec = importlib.util.spec_from_file_location("sciner_stack_script", REPO / "scripts" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


stack_mod = load_stack()


def test_back_off_doubles_and_gives_up_after_too_many_restarts_in_the_window():
    policy = stack_mod.RestartPolicy(max_restarts=3, window_s=60, backoff_s=1, backoff_max_s=3)
    assert policy.delay([], now=100) == 1
    assert policy.delay([95], now=100) == 2
    assert policy.delay([90, 95], now=100) == 3  # capped
    assert policy.delay([80, 90, 95], now=100) is None
    assert policy.delay([10, 20, 95], now=100) == 2  # old restarts fall out of the window


def test_a_dying_child_is_restarted_then_the_stack_gives_up_naming_it(tmp_path, caplog):
    stack = stack_mod.Stack(tmp_path, 1, 2, tmp_path / "logs")
    stack.policy = stack_mod.RestartPolicy(max_restarts=2, window_s=60, backoff_s=0.1, backoff_max_s=0.2)
    # stands in for `mlflow server` whose server process was killed: exits 0 at once
    cmd = [sys.executable, "-c", "print('serving'); raise SystemExit(0)"]
    keeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    first = stack.start("mlflow", cmd)
    other = stack.start("scheduler", keeper)
    pids = {first.pid}
    caplog.set_level(logging.INFO, logger="stack")
    try:
        with pytest.raises(SystemExit) as exc:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                stack.supervise()
                pids |= {p.pid for name, p in stack.procs if name == "mlflow"}
                time.sleep(0.05)
        message = str(exc.value.code)
        assert "mlflow exited with code 0" in message and "giving up" in message and "mlflow.log" in message
        assert len(pids) == 3  # started, restarted twice
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2 and all(w.startswith("mlflow (pid") and "restarting it" in w for w in warnings)
        assert other.poll() is None  # the healthy child was left alone
        assert (tmp_path / "logs" / "mlflow.log").read_text().count("serving") == 3
    finally:
        stack.stop()
    assert other.poll() is not None and stack.procs == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_stack_is_sent_sigterm_when_its_parent_dies(tmp_path):
    """A `make` killed with SIGKILL cannot pass anything on to the stack: the stack must stop (SIGTERM, its
    orderly shutdown) when its parent dies, or it would run on orphaned."""
    got, ready = tmp_path / "got", tmp_path / "ready"
    child = (
        "import signal, sys, time\n"
        f"sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "import stack\n"
        f"signal.signal(signal.SIGTERM, lambda s, f: (open({str(got)!r}, 'w').write('SIGTERM'), sys.exit(0)))\n"
        "stack.stop_with_parent()\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "CHILD": child}
    parent = subprocess.Popen(["bash", "-c", f'"{sys.executable}" -c "$CHILD" & wait'], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the child never started"
        assert not got.exists()
        parent.kill()  # SIGKILL: the parent gets no chance to pass anything on
        parent.wait()
        deadline = time.monotonic() + 10
        # the handler's open() creates the file before its write lands: wait for the text, not the file
        while not (got.exists() and got.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got.read_text() == "SIGTERM"
    finally:
        if parent.poll() is None:
            parent.kill()
