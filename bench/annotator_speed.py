"""Annotator speed: sentences/s of model folders through the shared predictor (what a round's
calibrate and auto-annotate stages run), interleaved in one run, medians reported, and what a round's
inference would take with each as its annotator.

    .venv/bin/python bench/annotator_speed.py --model minilm=var/bench/quality-head-lr \\
        --model mpnet=var/bench/mpnet-speed --sentences 1000 --repeats 3

A round runs its annotator over gold dev (threshold calibration, 7,038 sentences) and over the round's
papers (11,309 sentences for 1,500 anthology abstracts: docs/benchmarks.md's measured round); the
estimate is those counts over the measured rate. Writes bench/results/annotator-speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED, machine, now, sample_by_document, save_result
from sciner.io.jsonl import read_jsonl
from sciner.predictor import Predictor
from sciner.settings import get_settings

ROUND_SENTENCES = {"gold dev (calibration)": 7_038, "papers (1,500 abstracts)": 11_309}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=MODEL_DIR (repeatable)")
    ap.add_argument("--data", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variant", default=None, help="ONNX variant (default SCINER_ONNX_VARIANT)")
    args = ap.parse_args()
    settings = get_settings()
    models = dict(item.split("=", 1) for item in args.model)
    predictors = {name: Predictor.from_model_dir(Path(path), settings, args.variant) for name, path in models.items()}
    sentences = [s.tokens for s in sample_by_document(read_jsonl(args.data), args.sentences, seed=0)]
    for p in predictors.values():  # warm-up: sessions, allocator, caches
        p.predict_sentences(sentences[:64])
    rates: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(args.repeats):
        for name, p in predictors.items():  # interleaved: each repeat sees the same machine load
            t0 = time.perf_counter()
            p.predict_sentences(sentences)
            rates[name].append(len(sentences) / (time.perf_counter() - t0))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    first = next(iter(medians))
    lines = [
        f"Run {now()} on {machine()}: `{' '.join(sys.argv)}`",
        "",
        "| annotator | sentences/s (median) | vs " + first + " | round inference, minutes |",
        "|---|---|---|---|",
    ]
    for name, rate in medians.items():
        minutes = sum(ROUND_SENTENCES.values()) / rate / 60
        lines.append(f"| {name} | {rate:.0f} | {rate / medians[first]:.2f}x | {minutes:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    save_result(
        "annotator-speed",
        {
            "command": " ".join(sys.argv),
            "at": now(),
            "machine": machine(),
            "models": models,
            "variant": args.variant or settings.onnx_variant,
            "sentences": len(sentences),
            "rates": rates,
            "medians": medians,
            "round_sentences": ROUND_SENTENCES,
        },
        text,
    )


if __name__ == "__main__":
    main()
