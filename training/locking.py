"""Cross-process round lock and the retrainer heartbeat.

The lock is ``fcntl.flock`` on a file under ``SCINER_HOME``: exclusive across processes of one host
(and one pod: the retrainer's volume is ReadWriteOnce), released by the kernel when the holder dies,
SIGKILL included, so it can never go stale. The holder writes who it is into the file for diagnostics;
the file itself is never deleted (deleting a lock file lets two processes lock two different inodes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sciner.model_dir import atomic_write_text


class LockBusy(RuntimeError):
    """Another process holds the round lock."""

    def __init__(self, path: Path, holder: dict | None) -> None:
        self.path, self.holder = path, holder or {}
        who = ", ".join(f"{k}={v}" for k, v in self.holder.items()) or "unknown holder"
        super().__init__(f"another round is running ({who}); lock {path}")


class RoundLock:
    def __init__(self, path: Path, purpose: str = "round") -> None:
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> dict | None:
        """What the current (or last) holder wrote into the lock file."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
            return json.loads(text) if text else None
        except (OSError, json.JSONDecodeError):
            return None

    def acquire(self, wait: float = 0.0, poll: float = 0.5) -> None:
        """Take the lock; wait up to ``wait`` seconds (0: fail at once, <0: forever), else LockBusy."""
        if self._fd is not None:
            raise RuntimeError("lock already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if wait < 0 else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockBusy(self.path, self.holder()) from None
                time.sleep(poll)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv[:4]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> RoundLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


# --- heartbeat -------------------------------------------------------------------------------
def write_heartbeat(path: Path, state: str, **extra: object) -> None:
    info = {
        "time": time.time(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pid": os.getpid(),
        "state": state,
        **extra,
    }
    atomic_write_text(path, json.dumps(info, default=str))


def read_heartbeat(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def heartbeat_age(path: Path, now: float | None = None) -> float | None:
    """Seconds since the last heartbeat, ``None`` if there is none."""
    info = read_heartbeat(path)
    if info is None or not isinstance(info.get("time"), (int, float)):
        return None
    return (time.time() if now is None else now) - float(info["time"])


class Heartbeat:
    """Refresh a heartbeat file every ``interval`` seconds from a daemon thread."""

    def __init__(self, path: Path, interval: float, state: str = "running", **extra: object) -> None:
        self.path, self.interval = Path(path), interval
        self.state, self.extra = state, extra
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, state: str | None = None, **extra: object) -> None:
        if state is not None:
            self.state = state
        self.extra.update(extra)
        with contextlib.suppress(OSError):
            write_heartbeat(self.path, self.state, **self.extra)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def start(self) -> Heartbeat:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self, state: str | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if state is not None:
            self.beat(state)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
