"""The local stack: MLflow tracking server + champion bootstrap + BentoML service + retraining scheduler.

    make run                                   # = .venv/bin/python scripts/stack.py
    .venv/bin/python scripts/stack.py --mlflow-port 5000 --service-port 3000 --home var

Everything runs on 127.0.0.1 and keeps its state under ``--home`` (MLflow's sqlite database and
artifacts, the paper store, model folders), so a second run reuses what the first one made.
Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) stops every process this script started, and
so does the death of its parent: ``make`` passes SIGTERM on, but a ``make`` killed with SIGKILL (an
OOM kill, a supervisor's last resort) cannot, and this script would otherwise run on orphaned. (A SIGINT
sent to ``make`` alone, not to its process group as Ctrl-C does, stops nothing: make waits for this
script to end.)

The service runs without bearer tokens (``SCINER_AUTH_ENABLED=false``): it listens on 127.0.0.1
only. Set ``SCINER_AUTH_ENABLED=true`` and ``SCINER_API_READ_TOKENS`` / ``SCINER_API_WRITE_TOKENS``
to try it with tokens. MLflow runs without authentication here too (loopback only).

A child that dies (MLflow, the service, the scheduler; any exit code: ``mlflow server`` exits 0
when its server process is killed) is restarted after a back-off (1 s, 2 s, 4 s, ... up to 30 s)
with a WARNING naming it; after ``--max-restarts`` restarts within ``--restart-window`` seconds
the stack stops everything and exits non-zero, naming the child and its log.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from service.mlflow_process import mlflow_server_command

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED_GOLD = REPO.parent / "shared" / "data" / "sciner"  # --gold shared
# the training recipe of each --gold choice (SCINER_* variables already set win over it)
RECIPES = {"seed": REPO / "data" / "seed" / "recipe.env", "shared": REPO / "data" / "full-gold-recipe.env"}
log = logging.getLogger("stack")
STOP_GRACE_S = 20  # SIGTERM to SIGKILL
RESTART_BACKOFF_S = 1.0  # first restart delay, doubled per recent restart
RESTART_BACKOFF_MAX_S = 30.0
POLL_S = 1.0


@dataclass
class RestartPolicy:
    """When to restart a dead child (pure): back-off doubling per restart within the window; None
    (give up) once ``max_restarts`` restarts happened within ``window_s``."""

    max_restarts: int = 5
    window_s: float = 600.0
    backoff_s: float = RESTART_BACKOFF_S
    backoff_max_s: float = RESTART_BACKOFF_MAX_S

    def delay(self, restarts: list[float], now: float) -> float | None:
        recent = [t for t in restarts if now - t <= self.window_s]
        if len(recent) >= self.max_restarts:
            return None
        return min(self.backoff_max_s, self.backoff_s * 2 ** len(recent))


@dataclass
class Supervised:
    """A long-running child: its command, to start it again, and its restart times."""

    cmd: list[str]
    restarts: list[float] = field(default_factory=list)
    due: float | None = None  # when a pending restart happens


def _describe(proc: object) -> str:
    import psutil

    try:
        return " ".join(proc.cmdline())[:120]  # type: ignore[attr-defined]
    except psutil.Error:
        return "?"


class Stack:
    def __init__(self, home: Path, mlflow_port: int, service_port: int, log_dir: Path) -> None:
        self.home = home
        self.mlflow_port = mlflow_port
        self.service_port = service_port
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.supervised: dict[str, Supervised] = {}
        self.policy = RestartPolicy()
        self.env = {
            **os.environ,
            "SCINER_HOME": str(home),
            "SCINER_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "SCINER_MODEL_URI": os.environ.get("SCINER_MODEL_URI", "models:/sciner@champion"),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "BENTOML_DO_NOT_TRACK": "True",
            "BENTOML_HOME": str(home / "bentoml"),
            "PYTHONUNBUFFERED": "1",
            # loopback only (127.0.0.1): the service runs without bearer tokens unless asked to
            "SCINER_AUTH_ENABLED": os.environ.get("SCINER_AUTH_ENABLED", "false"),
        }

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc))
        self.supervised.setdefault(name, Supervised(cmd))
        log.info("started %s (pid %d), log %s", name, proc.pid, self.log_dir / f"{name}.log")
        return proc

    def supervise(self, now: float | None = None) -> None:
        """Restart children that died, after their back-off; SystemExit (non-zero, naming the
        child) when one keeps dying. Call it every second or so."""
        now = time.monotonic() if now is None else now
        for name, proc in list(self.procs):
            child = self.supervised.get(name)
            if child is None or proc.poll() is None:
                continue
            logfile = self.log_dir / f"{name}.log"
            if child.due is None:
                delay = self.policy.delay(child.restarts, now)
                if delay is None:
                    raise SystemExit(
                        f"stack: {name} exited with code {proc.returncode} after {len(child.restarts)} restarts "
                        f"within {self.policy.window_s:.0f}s; giving up and stopping everything. See {logfile}"
                    )
                child.due = now + delay
                log.warning(
                    "%s (pid %d) exited with code %s; restarting it in %.0fs (restart %d of at most %d "
                    "within %.0fs); see %s",
                    name, proc.pid, proc.returncode, delay, len(child.restarts) + 1,
                    self.policy.max_restarts, self.policy.window_s, logfile,
                )  # fmt: skip
            elif now >= child.due:
                child.due = None
                child.restarts.append(now)
                self.procs.remove((name, proc))
                self.start(name, child.cmd)

    def run(self, name: str, cmd: list[str]) -> None:
        """A step that must finish (bootstrap); its output goes to the terminal."""
        log.info("%s: %s", name, " ".join(cmd))
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, start_new_session=True)
        self.procs.append((name, proc))
        code = proc.wait()
        self.procs.remove((name, proc))
        if code != 0:
            raise SystemExit(f"{name} failed with exit code {code}")

    def wait_http(self, name: str, url: str, timeout: float, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with code {proc.returncode}; see {self.log_dir / name}.log")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise SystemExit(f"{name} not ready at {url} after {timeout:.0f}s; see {self.log_dir / name}.log")

    def stop(self) -> None:
        """SIGTERM every started process tree, then SIGKILL what is left. BentoML starts its workers
        in sessions of their own, so process groups are not enough: the tree is walked (psutil)."""
        import psutil

        tree: list[psutil.Process] = []
        for _name, proc in self.procs:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                tree += [root, *root.children(recursive=True)]
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                log.info("stopping %s (pid %d)", name, proc.pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        started = time.monotonic()
        names = {proc.pid: name for name, proc in self.procs}

        def gone(p: psutil.Process) -> None:
            if p.pid in names:
                log.info("%s stopped after %.1fs", names[p.pid], time.monotonic() - started)

        _gone, alive = psutil.wait_procs(tree, timeout=STOP_GRACE_S, callback=gone)
        for p in alive:
            log.warning("pid %d (%s) still running after %ds: killed", p.pid, _describe(p), STOP_GRACE_S)
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        for _name, proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        self.procs.clear()


def stop_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``);
    SIGTERM at once if the parent is already gone. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): the stack outlives its parent", ctypes.get_errno())
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` pairs of a dotenv file (python-dotenv, which pydantic-settings already uses)."""
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def gold_env(gold: str, shared: Path) -> dict[str, str]:
    """The ``SCINER_*`` variables the stack sets for ``--gold`` (``seed`` or ``shared``, whose gold set is in
    ``shared``): the gold set's paths and its training recipe. A variable already set wins over them."""
    env: dict[str, str] = {}
    if gold == "shared":
        if not (shared / "train.jsonl").is_file():
            raise SystemExit(f"--gold shared: {shared} has no train.jsonl")
        env["SCINER_GOLD_TRAIN_PATH"] = str(shared / "train.jsonl")
        env["SCINER_GOLD_DEV_PATH"] = str(shared / "dev.jsonl")
    env.update(read_env_file(RECIPES[gold]))
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("SCINER_HOME", REPO / "var")))
    ap.add_argument("--mlflow-port", type=int, default=int(os.environ.get("SCINER_MLFLOW_PORT", 5000)))
    ap.add_argument("--service-port", type=int, default=int(os.environ.get("SCINER_SERVICE_PORT", 3000)))
    ap.add_argument(
        "--gold",
        choices=("seed", "shared"),
        default=os.environ.get("SCINER_STACK_GOLD", "seed"),
        help="gold set for the bootstrap and promotion: the repo's seed set (minutes, data/seed/recipe.env) or "
        "../shared/data/sciner train/dev (~40 minutes of training on 2 cores, data/full-gold-recipe.env)",
    )
    ap.add_argument("--no-scheduler", action="store_true", help="do not start the retraining scheduler")
    ap.add_argument("--exit-when-ready", action="store_true", help="stop everything once it is all up (checks)")
    ap.add_argument("--max-restarts", type=int, default=5, help="restarts of one child within --restart-window")
    ap.add_argument("--restart-window", type=float, default=600.0, help="seconds (see --max-restarts)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack: %(message)s", stream=sys.stdout)

    home = args.home.resolve()
    for port in (args.mlflow_port, args.service_port):
        if not port_free(port):
            raise SystemExit(f"port {port} on 127.0.0.1 is taken: pass --mlflow-port / --service-port")
    stack = Stack(home, args.mlflow_port, args.service_port, home / "logs")
    for key, value in gold_env(args.gold, SHARED_GOLD).items():
        stack.env.setdefault(key, value)

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        # once only: Ctrl-C under `make run` can bring SIGINT and then SIGTERM (make passing its own on, or
        # exiting: stop_with_parent); a second KeyboardInterrupt in the clean-up would orphan the children
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    # SIGINT too: Ctrl-C even when started in the background by a shell, which starts such jobs with SIGINT ignored
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    stop_with_parent()
    try:
        mlflow_dir = home / "mlflow"
        mlflow_dir.mkdir(parents=True, exist_ok=True)
        mlflow = stack.start("mlflow", mlflow_server_command(mlflow_dir, args.mlflow_port, [str(BIN / "mlflow")]))
        stack.wait_http("mlflow", f"http://127.0.0.1:{args.mlflow_port}/health", 120, mlflow)
        stack.run("bootstrap", [str(BIN / "sciner"), "bootstrap"])
        service = stack.start(
            "service",
            [
                str(BIN / "bentoml"),
                "serve",
                "service.app:SciNER",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.service_port),
            ],
        )
        stack.wait_http("service", f"http://127.0.0.1:{args.service_port}/readyz", 300, service)
        if not args.no_scheduler:
            stack.start("scheduler", [str(BIN / "sciner"), "scheduler"])
        base = f"http://127.0.0.1:{args.service_port}"
        example = "We fine-tune BERT with a learning rate of 2e-5 and reach 84.6 accuracy on MNLI."  # README's
        print(
            "\n"
            f"  sciner is up.  MLflow UI (registry, versions, aliases): http://127.0.0.1:{args.mlflow_port}\n"
            f"  API docs: {base}/docs    model: {base}/model    metrics: {base}/metrics\n"
            f"  try:  curl -s -X POST {base}/extract -H 'content-type: application/json' \\\n"
            f'          -d \'{{"text": "{example}"}}\'\n'
            f"   or:  .venv/bin/sciner predict --text '{example}'\n"
            f"  logs: {home / 'logs'}    state: {home}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        if args.exit_when_ready:
            return
        stack.policy = RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window)
        while True:
            stack.supervise()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        # a second Ctrl-C must not cut the shutdown short and orphan what is still stopping
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        stack.stop()
        log.info("all stopped")


if __name__ == "__main__":
    main()
