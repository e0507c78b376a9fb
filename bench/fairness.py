"""Fair latency under large requests: do 100,000-character texts hold one-sentence requests?

Starts its own ``bentoml serve service.app:SciNER`` on 127.0.0.1 per mode and, for ``--duration``
seconds, has ``--big-clients`` clients send ``--big-chars``-character texts back to back while
``--small-clients`` clients send one sentence each, back to back. Reports the small requests'
p50/p95/p99/max latency and their non-200 answers (503s apart), and the big requests' count and
latency. Target (issue 12): small p95 < 250 ms and zero 503s while 4 clients send 100k-char texts.

Modes: ``lane`` (the service as configured: long requests on the long lane, in pieces) and
``no-lane`` (``SCINER_LONG_TEXT_CHARS`` out of reach: long texts ride in the adaptive batches, the
behaviour before the lane), for comparison on the same machine.

    python bench/fairness.py --model-dir <model folder> [--duration 60] [--write docs/benchmarks.md]
    python bench/fairness.py --model-dir <model folder> --duration 3 --big-chars 5000 \\
        --big-clients 1 --small-clients 2 --modes lane          # a few-second smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import put_block
from bench.serve import Conn, default_data, load_sentences
from service.process import quiet_env, ready_service

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Fair latency under large requests (bench/fairness.py)"
BEGIN, END = "<!-- bench/fairness.py: begin -->", "<!-- bench/fairness.py: end -->"
TARGET_P95_MS = 250.0
MODES = {"lane": {}, "no-lane": {"SCINER_LONG_TEXT_CHARS": str(10**9)}}


@dataclass
class Stream:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def add(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))] * 1000

    @property
    def non_200(self) -> int:
        return len(self.latencies) - self.statuses.get(200, 0) + self.errors


@dataclass
class Result:
    mode: str
    small: Stream
    big: Stream
    wall: float

    @property
    def passed(self) -> bool:
        return self.small.pct(95) < TARGET_P95_MS and self.small.statuses.get(503, 0) == 0 and not self.small.errors


async def client(port: int, bodies: list[bytes], out: Stream, stop_at: float, offset: int) -> None:
    conn = Conn(port)
    i = offset
    try:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                status, _ = await conn.post("/extract", bodies[i % len(bodies)])
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                out.errors += 1
                await conn.close()
                continue
            out.add(status, time.perf_counter() - t0)
            i += 1
    finally:
        await conn.close()


async def run_mode(port: int, args: argparse.Namespace, small: list[bytes], big: list[bytes], mode: str) -> Result:
    warm = Stream()
    await client(port, small, warm, time.perf_counter() + 1.0, 0)  # connections and caches warm
    small_stream, big_stream = Stream(), Stream()
    start = time.perf_counter()
    stop_at = start + args.duration
    await asyncio.gather(
        *(client(port, big, big_stream, stop_at, k) for k in range(args.big_clients)),
        *(client(port, small, small_stream, stop_at, k * 7) for k in range(args.small_clients)),
    )
    return Result(mode, small_stream, big_stream, time.perf_counter() - start)


def big_texts(sentences: list[str], chars: int, count: int) -> list[str]:
    """``count`` different texts of about ``chars`` characters made of real sentences."""
    texts = []
    for k in range(count):
        parts: list[str] = []
        size, i = 0, k * 13
        while size < chars:
            s = sentences[i % len(sentences)]
            parts.append(s)
            size += len(s) + 1
            i += 1
        texts.append(" ".join(parts)[:chars])
    return texts


def table(results: list[Result]) -> str:
    rows = [
        "| mode | small requests | small p50 ms | small p95 ms | small p99 ms | small max ms | small non-200 "
        "| of which 503 | big requests done | big p50 s | target met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.mode} | {len(r.small.latencies)} | {r.small.pct(50):.1f} | {r.small.pct(95):.1f} | "
            f"{r.small.pct(99):.1f} | {r.small.pct(100):.1f} | {r.small.non_200} | {r.small.statuses.get(503, 0)} | "
            f"{r.big.statuses.get(200, 0)} | {r.big.pct(50) / 1000:.1f} | {'yes' if r.passed else 'no'} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per mode")
    ap.add_argument("--big-clients", type=int, default=4)
    ap.add_argument("--small-clients", type=int, default=16)
    ap.add_argument("--big-chars", type=int, default=100_000)
    ap.add_argument("--modes", default="lane,no-lane", help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--data", type=Path, default=default_data(), help="JSONL sentences (tokens) to send")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the servers (repeatable)")
    ap.add_argument("--write", type=Path, help="put the table into this markdown file (docs/benchmarks.md)")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown modes: {sorted(unknown)}")
    extra = dict(item.split("=", 1) for item in args.env)
    sentences = load_sentences(args.data, 5000)
    small = [json.dumps({"text": s}).encode() for s in sentences[:500]]
    big = [json.dumps({"text": t}).encode() for t in big_texts(sentences, args.big_chars, max(1, args.big_clients))]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="sciner-fairness-") as tmp:
        for mode in modes:
            home = Path(tmp) / mode
            env = quiet_env(
                home,
                SCINER_MODEL_URI=str(args.model_dir.resolve()),
                SCINER_MAX_CHARS=str(max(args.big_chars, 100_000)),
                SCINER_ACCESS_LOG="false",
                **{**MODES[mode], **extra},
            )
            with ready_service(env, home / "serve.log", timeout=300) as srv:
                result = asyncio.run(run_mode(srv.port, args, small, big, mode))
            results.append(result)
            print(f"{mode}: small p95 {result.small.pct(95):.1f} ms, 503s {result.small.statuses.get(503, 0)}, "
                  f"big done {result.big.statuses.get(200, 0)}", file=sys.stderr, flush=True)  # fmt: skip
    command = "python bench/fairness.py " + shlex.join(sys.argv[1:])
    body = (
        f"{table(results)}\n\n"
        f"{args.big_clients} clients send {args.big_chars:,}-character texts back to back while "
        f"{args.small_clients} clients send one sentence each, for {args.duration:.0f} s per mode "
        f"(target: small p95 < {TARGET_P95_MS:.0f} ms, zero 503s). Machine: {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, shared with the load generator. Command: `{command}`."
    )
    print(body)
    if args.write:
        put_block(args.write, SECTION, BEGIN, END, body)
    sys.exit(0 if all(r.passed for r in results if r.mode == "lane") else 1)


if __name__ == "__main__":
    main()
