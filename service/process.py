"""Start and stop a real ``bentoml serve`` of this service on loopback (tests, benchmarks, dev).

The server runs in its own process group so that stopping it also stops BentoML's worker
processes; :meth:`ServiceProcess.stop` sends SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PORT_RETRIES = 2  # starts retried when a port picked free was taken before the server bound it


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def quiet_env(home: Path, **overrides: str) -> dict[str, str]:
    """Environment for a sandboxed server: own BentoML home, no telemetry, no hub access."""
    env = {
        **os.environ,
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "SCINER_HOME": str(home / "var"),
        "PYTHONUNBUFFERED": "1",
        # a loopback sandbox: bearer tokens off unless the caller turns them on (tests/test_security.py)
        "SCINER_AUTH_ENABLED": "false",
    }
    env.update(overrides)
    return env


class ServiceProcess:
    """``with ServiceProcess(env, log_path) as srv: srv.url ...`` — a served ``service.app:SciNER``."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self._own_port = port is None
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._tree: set[tuple[int, str]] = set()
        self._log_start = 0
        self.port_retries = 0

    def start(self) -> ServiceProcess:
        cmd = [sys.executable, "-m", "bentoml", "serve", "service.app:SciNER", "--host", HOST, "--port", str(self.port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def wait(self, path: str = "/readyz", timeout: float = 180, status: int = 200) -> None:
        """Wait until ``GET path`` answers ``status`` (raises with the server log's tail if not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                if self._lost_port_race():
                    self.start()
                    continue
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.get(path, timeout=2)[0] == status:
                    if self.proc is not None:  # remember the workers, to stop them even if orphaned
                        self._tree |= process_tree(self.proc.pid)
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.url}{path} did not answer {status} within {timeout}s:\n{self.log_tail()}")

    def _lost_port_race(self) -> bool:
        """A port picked free was taken before the server bound it (ours, or one BentoML's process manager
        picks for itself): true, with a fresh port of ours, for the first :data:`PORT_RETRIES` such exits."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_start)
                started_log = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return False
        if "address already in use" not in started_log.lower() or self.port_retries >= PORT_RETRIES:
            return False
        self.port_retries += 1
        if self._own_port:
            self.port = free_port()
            self.url = f"http://{HOST}:{self.port}"
        return True

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 20) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace, known=self._tree)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _stat_fields(stat: Path) -> list[str] | None:
    """Fields of a ``/proc/.../stat`` file after the command name; None once the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(fields: list[str]) -> float:
    """utime + stime of a stat line, in seconds."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, list[str]]:
    """``/proc/<pid>/stat`` fields after the command name, for every live process (Linux)."""
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        if (fields := _stat_fields(stat)) is not None:
            stats[int(stat.parent.name)] = fields
    return stats


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid``. BentoML's arbiter starts its workers in sessions of their
    own, so they are not in its process group: stopping needs the tree."""
    children: dict[int, list[int]] = {}
    for child, fields in _proc_stats().items():
        children.setdefault(int(fields[1]), []).append(child)
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@contextlib.contextmanager
def ready_service(env: dict[str, str], log_path: Path, timeout: float = 240) -> Iterator[ServiceProcess]:
    """A served sciner that answers ``/readyz`` with 200 on entry (its log in ``log_path``); stopped on exit."""
    with ServiceProcess(env, log_path) as srv:
        srv.wait("/readyz", timeout=timeout)
        yield srv


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds used so far by ``pid`` and its live descendants."""
    stats = _proc_stats()
    return sum(_cpu_seconds(stats[p]) for p in [pid, *descendants(pid)] if p in stats)


def tree_main_thread_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of the *main threads* of ``pid`` and its live descendants: in a
    BentoML worker that is the thread running the HTTP event loop (inference runs in others)."""
    mains = (_stat_fields(Path(f"/proc/{p}/task/{p}/stat")) for p in [pid, *descendants(pid)])
    return sum(_cpu_seconds(fields) for fields in mains if fields is not None)


def process_tree(pid: int) -> set[tuple[int, str]]:
    """``(pid, start time)`` of the live descendants of ``pid``: identifies them even after a reparent."""
    stats = _proc_stats()
    return {(p, stats[p][19]) for p in descendants(pid) if p in stats}


def stop_process_group(
    proc: subprocess.Popen[bytes], grace: float = 20, known: set[tuple[int, str]] | None = None
) -> None:
    """SIGTERM the process group led by ``proc`` (started with ``start_new_session=True``), SIGKILL
    it after ``grace`` seconds, then SIGKILL whatever of its process tree (as seen now, plus
    ``known``) outlived it."""
    tree = set(known or ())
    if proc.poll() is None:
        tree |= process_tree(proc.pid)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    alive = _proc_stats()
    for pid, started in tree:  # only the very processes seen above (same pid and start time)
        if pid in alive and alive[pid][19] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
