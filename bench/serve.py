"""Load-test the service on loopback: batching on vs off, and against a peer, concurrency 1 / 16 / 64.

Starts its own ``bentoml serve service.app:SciNER`` per mode (127.0.0.1 only) on a model folder,
sends single-sentence ``POST /extract`` requests, and reports p50/p95/p99 latency, requests/s and
non-200 answers (503s counted apart) per mode and concurrency, side by side. Bounded: a fixed
number of requests per level and a time cap per level. The client is a minimal keep-alive
HTTP/1.1 client on asyncio streams, so the load generator takes as little CPU as possible from
the server it measures (they share the machine).

Mode ``peer`` is what a user would otherwise run: FastAPI + the Hugging Face token-classification
``pipeline`` on the same checkpoint's ``hf/`` folder (:mod:`bench.peer_server`), measured by the same
client in the same run, back to back with the sciner modes; the report gives sciner's req/s as a
multiple of the peer's per concurrency (absolute figures on a shared box drift by a third within an
hour; ratios within one run hold).

    python bench/serve.py --model-dir <model folder> [--modes on,peer] [--requests 3000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import put_block
from service.process import HOST, ServiceProcess, quiet_env, tree_cpu_seconds, tree_main_thread_cpu_seconds

PEER = "peer"  # FastAPI + transformers pipeline (bench/peer_server.py), not a sciner configuration

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Serving (bench/serve.py)"
# on/off: the service's adaptive batching, all else equal. naive: no batching, one request at a time
# on one multi-threaded ONNX session with spinning threads (the calibration's "naive int8 service").
MODES: dict[str, dict[str, str]] = {
    "on": {"SCINER_ADAPTIVE_BATCHING": "true"},
    "off": {"SCINER_ADAPTIVE_BATCHING": "false"},
    "naive": {
        "SCINER_ADAPTIVE_BATCHING": "false",
        "SCINER_SERVICE_PARALLEL_BATCHES": "1",
        "SCINER_SERVICE_INTRA_OP_THREADS": "0",
        "SCINER_SERVICE_ORT_SPINNING": "true",
    },
    PEER: {},
}


class PeerProcess(ServiceProcess):
    """The peer server (:mod:`bench.peer_server`) with the start, wait and stop of a sciner server."""

    def __init__(self, env: dict[str, str], log_path: Path, model_dir: Path) -> None:
        super().__init__(env, log_path)
        self.model_dir = model_dir

    def start(self) -> PeerProcess:
        import subprocess

        cmd = [
            sys.executable,
            "-m",
            "bench.peer_server",
            "--model-dir",
            str(self.model_dir),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self


@dataclass
class Level:
    mode: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connection-level failures
    wall: float = 0.0
    server_cpu: float = float("nan")  # CPU seconds the server's processes used during the level
    loop_cpu: float = float("nan")  # of which their main threads (the HTTP event loop)

    def merge(self, other: Level) -> None:
        """Add another round of the same mode and concurrency."""
        self.latencies += other.latencies
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.errors += other.errors
        self.wall += other.wall
        self.server_cpu += other.server_cpu
        self.loop_cpu += other.loop_cpu

    @property
    def sent(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def non_200(self) -> int:
        return self.sent - self.ok

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))] * 1000


# --- a minimal HTTP/1.1 keep-alive client -------------------------------------------------------
class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def run_level(
    port: int, mode: str, concurrency: int, bodies: list[bytes], n_requests: int, time_cap: float
) -> Level:
    level = Level(mode, concurrency)
    counter = iter(range(n_requests))
    deadline = time.perf_counter() + time_cap

    async def worker() -> None:
        conn = Conn(port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    status, _ = await conn.post("/extract", bodies[i % len(bodies)])
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                    level.errors += 1
                    await conn.close()
                    continue
                level.latencies.append(time.perf_counter() - t0)
                level.statuses[status] = level.statuses.get(status, 0) + 1
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    level.wall = time.perf_counter() - start
    return level


# --- data -------------------------------------------------------------------------------------
def default_data() -> Path:
    """The shared SciNER dev split when it is beside the repo (realistic lengths), else the seed dev."""
    shared = REPO.parent / "shared" / "data" / "sciner" / "dev.jsonl"
    return shared if shared.is_file() else REPO / "data" / "seed" / "dev.jsonl"


def load_sentences(path: Path, limit: int) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            tokens = json.loads(line).get("tokens") or []
            if tokens:
                texts.append(" ".join(tokens))
            if len(texts) >= limit:
                break
    if not texts:
        raise SystemExit(f"no sentences in {path}")
    return texts


# --- report -----------------------------------------------------------------------------------
def table(levels: list[Level]) -> str:
    rows = [
        "| concurrency | batching | requests | req/s | p50 ms | p95 ms | p99 ms | non-200 | of which 503 "
        "| server CPU ms/req | of which event loop |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {mode: i for i, mode in enumerate(MODES)}
    for lv in sorted(levels, key=lambda x: (x.concurrency, order.get(x.mode, 99))):
        rows.append(
            f"| {lv.concurrency} | {lv.mode} | {lv.sent} | {lv.ok / lv.wall:.0f} | {lv.pct(50):.1f} | "
            f"{lv.pct(95):.1f} | {lv.pct(99):.1f} | {lv.non_200} | {lv.statuses.get(503, 0)} | "
            f"{1000 * lv.server_cpu / max(1, lv.sent):.1f} | {1000 * lv.loop_cpu / max(1, lv.sent):.1f} |"
        )
    return "\n".join(rows)


def peer_ratios(levels: list[Level], mode: str = "on") -> str:
    """``sciner <mode> / peer`` req/s per concurrency (empty without both)."""
    by = {(lv.mode, lv.concurrency): lv for lv in levels}
    parts = []
    for c in sorted({lv.concurrency for lv in levels}):
        ours, peer = by.get((mode, c)), by.get((PEER, c))
        if ours and peer and peer.ok and peer.wall and ours.wall:
            parts.append(f"c={c}: {(ours.ok / ours.wall) / (peer.ok / peer.wall):.1f}x")
    return f"sciner (batching {mode}) req/s as a multiple of the peer's, same run: " + ", ".join(parts) if parts else ""


def write_section(path: Path, label: str, body: str) -> None:
    """Put ``body`` into this script's section of ``path`` as the block named ``label``: an earlier
    block of that label is replaced, other blocks and hand-written text in the section are kept."""
    put_block(path, SECTION, f"<!-- bench/serve.py {label}: begin -->", f"<!-- bench/serve.py {label}: end -->", body)


def served_settings(extra_env: dict[str, str]) -> str:
    """The serving knobs in effect for the benchmarked servers (defaults plus ``--env``)."""
    from sciner.settings import Settings

    saved = dict(os.environ)
    os.environ.update(extra_env)
    try:
        s = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    threads = s.service_intra_op_threads if s.service_intra_op_threads is not None else s.intra_op_threads
    parts = s.service_parallel_batches or len(os.sched_getaffinity(0))
    return (
        f"{s.service_workers} worker(s); each batch in {parts} parallel part(s) of ONNX {s.onnx_variant} "
        f"with {threads or 'all'} intra-op thread(s) each, ONNX batches ≤ {s.service_token_budget} word pieces; "
        f"max_batch_size {s.max_batch_size}, max_latency_ms {s.max_latency_ms}, "
        f"access log {'on' if s.access_log else 'off'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True, help="sciner model folder to serve")
    ap.add_argument("--data", type=Path, default=default_data(), help="JSONL sentences (tokens joined by spaces)")
    ap.add_argument("--skip", type=int, default=1000, help="sentences to skip at the start of --data")
    ap.add_argument("--requests", type=int, default=3000, help="requests per concurrency level")
    ap.add_argument("--warmup", type=int, default=200, help="requests before measuring (per mode)")
    ap.add_argument("--time-cap", type=float, default=60.0, help="seconds per level at most")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--modes", default="on,off", help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--rounds", type=int, default=1, help="repeat all levels, modes in turn; results pooled")
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the servers")
    ap.add_argument("--write", type=Path, help="write the table into this markdown file's section")
    ap.add_argument("--label", default="default", help="name of the table's block in that section")
    args = ap.parse_args()

    texts = load_sentences(args.data, args.skip + 2000)[args.skip :] or load_sentences(args.data, 2000)
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    levels: dict[tuple[str, int], Level] = {}
    load_before = os.getloadavg()
    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        ap.error(f"unknown mode(s) {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="sciner-bench-") as tmp, contextlib.ExitStack() as stack:
        servers: dict[str, ServiceProcess] = {}
        for mode in modes:  # all servers up at once (idle ones cost nothing), measured in turns
            home = Path(tmp) / mode
            env = quiet_env(home, SCINER_MODEL_URI=str(args.model_dir.resolve()), **{**extra_env, **MODES[mode]})
            proc = (
                PeerProcess(env, home / "serve.log", args.model_dir.resolve())
                if mode == PEER
                else ServiceProcess(env, home / "serve.log")
            )
            servers[mode] = stack.enter_context(proc)
        for srv in servers.values():
            srv.wait("/readyz", timeout=300)
        for mode, srv in servers.items():
            asyncio.run(run_level(srv.port, mode, 16, bodies, args.warmup, args.time_cap))
        for _ in range(args.rounds):
            for c in (int(x) for x in args.concurrency.split(",")):
                for mode, srv in servers.items():  # on and off back to back: same machine load
                    assert srv.proc is not None
                    cpu0, loop0 = tree_cpu_seconds(srv.proc.pid), tree_main_thread_cpu_seconds(srv.proc.pid)
                    lv = asyncio.run(run_level(srv.port, mode, c, bodies, args.requests, args.time_cap))
                    lv.server_cpu = tree_cpu_seconds(srv.proc.pid) - cpu0
                    lv.loop_cpu = tree_main_thread_cpu_seconds(srv.proc.pid) - loop0
                    print(
                        f"batching {mode:5} c={c:3}: {lv.ok / lv.wall:6.0f} req/s  p50 {lv.pct(50):6.1f} ms  "
                        f"p95 {lv.pct(95):6.1f} ms  non-200 {lv.non_200} (503: {lv.statuses.get(503, 0)})  "
                        f"server CPU {1000 * lv.server_cpu / max(1, lv.sent):.1f} ms/req  "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    levels.setdefault((mode, c), Level(mode, c, server_cpu=0.0, loop_cpu=0.0)).merge(lv)
    result = table(list(levels.values()))
    ratios = peer_ratios(list(levels.values()), "on" if "on" in modes else modes[0])
    result += f"\n\n{ratios}" if ratios else ""
    print("\n" + result)
    if args.write:
        argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
        cfg = served_settings(extra_env)
        n_words = statistics.median(len(t.split()) for t in texts)
        shown = args.data.relative_to(REPO.parent) if args.data.is_relative_to(REPO.parent) else args.data
        legend = "batching on/off is `SCINER_ADAPTIVE_BATCHING`, all else equal"
        if "naive" in modes:
            legend += (
                "; naive = no batching, one request at a time on one ONNX session using all cores with "
                "spinning threads (the calibration's naive int8 service)"
            )
        if PEER in modes:
            legend += (
                '; peer = FastAPI + Hugging Face `pipeline("token-classification", aggregation_strategy="simple")` '
                "on the same checkpoint's hf/ folder (PyTorch fp32, library defaults, bench/peer_server.py)"
            )
        machine = (
            f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), shared; load average "
            f"{load_before[0]:.2f} before the run, {os.getloadavg()[0]:.2f} after (other work shares these cores). "
            f"Client and server on the same cores over 127.0.0.1. Served with {cfg}; {legend}."
        )
        method = (
            f"{len(texts)} single sentences from `{shown}` (median {n_words:.0f} words), one per `POST /extract`; "
            f"{args.requests} requests per level and mode in each of {args.rounds} round(s), the modes measured "
            f"back to back (all servers up, the idle ones unloaded), after {args.warmup} warm-up requests; req/s "
            "counts 200s only; server CPU is user+system time of the server's processes per request, "
            "of which event loop: their main threads (HTTP, middlewares, JSON; inference runs in other threads)."
        )
        body = "\n".join([f"Command: `python bench/serve.py {argv}`", "", machine, method, "", result])
        write_section(args.write, args.label, f"#### {args.label}\n\n{body}")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
