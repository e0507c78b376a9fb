"""``sciner scheduler``: persistent APScheduler job, heartbeat, rounds in child processes, clean stop.

No MLflow here: the tracking URI points at a closed port, so every scheduled round fails fast with a
clear message and the scheduler must keep going."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from sciner.settings import Settings
from training.cli import app
from training.cli_common import bars
from training.scheduler import FUNC_REF, JOB_ID, build_trigger, ensure_job, make_scheduler, round_command

SCINER = [sys.executable, "-c", "from training.cli import app; app()"]


def _dead_uri() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_scheduled_rounds_log_stages_not_progress_bars(monkeypatch):
    assert round_command()[-3:] == ["retrain", "--once", "--no-progress"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert bars(None) is False and bars(True) is True  # a log file gets no bars unless asked
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert bars(None) is True and bars(False) is False


def test_job_is_persisted_with_coalesce_single_instance_and_misfire_grace(tmp_path):
    settings = Settings(home=tmp_path, retrain_interval_minutes=30, misfire_grace_seconds=120)
    sched = make_scheduler(settings)
    sched.start(paused=True)
    try:
        job = ensure_job(sched, settings)
        assert (job.id, job.func_ref, job.coalesce, job.max_instances, job.misfire_grace_time) == (
            JOB_ID,
            FUNC_REF,
            True,
            1,
            120,
        )
        first_run = job.next_run_time
    finally:
        sched.shutdown(wait=False)
    # a restart keeps the persisted job and its next run time
    sched = make_scheduler(settings)
    sched.start(paused=True)
    try:
        assert ensure_job(sched, settings).next_run_time == first_run
        cron = settings.model_copy(update={"retrain_cron": "0 3 * * 0"})
        replaced = ensure_job(sched, cron)
        assert str(replaced.trigger) == str(build_trigger(cron)) and "cron" in str(replaced.trigger)
        assert len(sched.get_jobs()) == 1
    finally:
        sched.shutdown(wait=False)


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for(lines: queue.Queue, marker: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"scheduler ended before {marker!r}:\n" + "".join(seen[-30:]))
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(f"no {marker!r} within {timeout}s:\n" + "".join(seen[-30:]))


@pytest.mark.slow
def test_scheduler_runs_rounds_survives_failures_heartbeats_and_stops_on_sigterm(tmp_path):
    env = {
        **os.environ,
        "SCINER_HOME": str(tmp_path),
        "SCINER_MLFLOW_TRACKING_URI": _dead_uri(),
        "SCINER_RETRAIN_INTERVAL_MINUTES": "0.05",
        "SCINER_HEARTBEAT_SECONDS": "0.5",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        [*SCINER, "scheduler"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "scheduled job sciner-retrain", 60, seen)
        deadline = time.monotonic() + 20
        while True:  # the first heartbeat follows right after the job is scheduled
            health = CliRunner().invoke(app, ["healthcheck"], env={"SCINER_HOME": str(tmp_path)})
            if health.exit_code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert health.exit_code == 0, health.output
        # the job fires, its child round fails clearly, the scheduler keeps going
        _wait_for(lines, "is unreachable", 90, seen)
        _wait_for(lines, "scheduled round failed (exit code 1)", 30, seen)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        _wait_for(lines, "scheduler stopped", 10, seen)
    finally:
        proc.kill()
        proc.wait()
    stopped = CliRunner().invoke(app, ["healthcheck"], env={"SCINER_HOME": str(tmp_path)})
    assert "state stopped" in stopped.output
    # restart: the persisted job is resumed, not re-created
    proc = subprocess.Popen(
        [*SCINER, "scheduler"],
        env={**env, "SCINER_RETRAIN_INTERVAL_MINUTES": "0.05"},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
    try:
        _wait_for(lines, "resuming persisted job sciner-retrain", 60, seen)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait()
