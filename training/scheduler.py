"""``sciner scheduler``: rounds on a cron or interval trigger, in the foreground.

APScheduler 3 with a SQLAlchemy job store in the paper store's database (table
``sciner_scheduler_jobs``), so the schedule and its next run time survive restarts: a run missed while
the retrainer was down fires once on start (``coalesce``) if it is less than ``misfire_grace_seconds``
late. ``max_instances=1`` and a single worker thread keep rounds sequential inside the process; the
round lock (:mod:`training.locking`) keeps them exclusive across processes.

By default each round runs as a fresh ``sciner retrain --once`` child process, so the memory of a
training run is returned to the system and a crash cannot take the scheduler down. The main thread
refreshes the heartbeat file that ``sciner healthcheck`` (the pod's liveness probe) reads.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from types import FrameType

from sciner.settings import Settings
from training.locking import Heartbeat

log = logging.getLogger("sciner.scheduler")

JOB_ID = "sciner-retrain"
FUNC_REF = "training.scheduler:scheduled_round"
JOBS_TABLE = "sciner_scheduler_jobs"
EXIT_LOCK_BUSY = 3

_child: subprocess.Popen | None = None
_child_lock = threading.Lock()


def build_trigger(settings: Settings):  # noqa: ANN201 - an APScheduler trigger
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if settings.retrain_cron:
        return CronTrigger.from_crontab(settings.retrain_cron, timezone=UTC)
    return IntervalTrigger(seconds=settings.retrain_interval_minutes * 60, timezone=UTC)


def round_command() -> list[str]:
    return [sys.executable, "-c", "from training.cli import app; app()", "retrain", "--once", "--no-progress"]


def scheduled_round() -> None:
    """The scheduled job (module-level so the persistent job store can reference it by name)."""
    global _child
    settings = Settings()
    log.info("scheduled round starting")
    if not settings.scheduler_subprocess:
        from training.locking import LockBusy
        from training.rounds import RoundError, run_round

        try:
            result = run_round(settings, progress=False)
            log.info("scheduled round finished: %s", result.to_dict())
        except LockBusy as exc:
            log.warning("scheduled round skipped: %s", exc)
        except RoundError as exc:
            log.error("scheduled round failed: %s", exc)
        return
    child = subprocess.Popen(round_command())
    with _child_lock:
        _child = child
    try:
        rc = child.wait()
    finally:
        with _child_lock:
            _child = None
    if rc == 0:
        log.info("scheduled round finished")
    elif rc == EXIT_LOCK_BUSY:
        log.warning("scheduled round skipped: another round holds the lock")
    else:
        log.error("scheduled round failed (exit code %s); papers stay unused, the next run retries", rc)


def make_scheduler(settings: Settings):  # noqa: ANN201 - BackgroundScheduler
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from sciner.paper_tables import make_engine

    engine = make_engine(settings.paper_store_url)
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_seconds},
        timezone=UTC,
    )


def ensure_job(scheduler, settings: Settings):  # noqa: ANN001, ANN201
    """Keep the persisted job (and its next run time) if its trigger is unchanged, else replace it."""
    trigger = build_trigger(settings)
    job = scheduler.get_job(JOB_ID)
    if (
        job is not None
        and str(job.trigger) == str(trigger)
        and job.func_ref == FUNC_REF
        and job.misfire_grace_time == settings.misfire_grace_seconds
    ):
        log.info("resuming persisted job %s (%s), next run %s", JOB_ID, trigger, job.next_run_time)
        return job
    job = scheduler.add_job(
        FUNC_REF,
        trigger,
        id=JOB_ID,
        name="sciner self-training round",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=settings.misfire_grace_seconds,
    )
    log.info("scheduled job %s (%s), next run %s", JOB_ID, trigger, job.next_run_time)
    return job


def run_scheduler(settings: Settings, *, run_now: bool = False, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``); the heartbeat is refreshed meanwhile."""
    stop = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping the scheduler", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    scheduler = make_scheduler(settings)
    scheduler.start(paused=True)
    job = ensure_job(scheduler, settings)
    if run_now:
        job = job.modify(next_run_time=datetime.now(UTC))
    scheduler.resume()
    heartbeat = Heartbeat(settings.heartbeat_path, settings.heartbeat_seconds, state="scheduler")
    try:
        while True:
            current = scheduler.get_job(JOB_ID)
            heartbeat.beat(
                state="scheduler",
                next_run=str(current.next_run_time) if current else None,
                round_running=_child is not None,
            )
            if stop.wait(settings.heartbeat_seconds):
                break
    finally:
        scheduler.shutdown(wait=False)
        _stop_child()
        heartbeat.beat(state="stopped")
        log.info("scheduler stopped")


def _stop_child(grace: float = 60.0) -> None:
    """Forward the stop to a running round: it dies, its lock goes with it, nothing was marked used."""
    with _child_lock:
        child = _child
    if child is None or child.poll() is not None:
        return
    log.warning("stopping the running round (pid %d); its papers stay unused", child.pid)
    child.terminate()
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
