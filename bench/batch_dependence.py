"""Do a model's answers depend on the sentences batched with it? Dev read in batches and a sentence at a time.

    .venv/bin/python bench/batch_dependence.py var/bench/quality-gold-2ep-crowd-s43 \\
        var/bench/quality-soup-gold-2ep-3ep-fgm03-fgm03x3 --name batch-dependence

ONNX Runtime's int8 models quantize activations dynamically, with one scale per tensor: per batch. For each
model and engine (int8 as served, fp32) gold dev is read twice, in the predictor's length-sorted token-budget
batches (what evaluation does, and the service with a full adaptive batch) and every sentence alone
(``SCINER_BATCH_MAX_WINDOWS=1``: what a lone request gets). Reported: strict micro-F1 of each reading, unbiased
and with the model's O-logit bias; the share of sentences whose tags differ between the readings; the largest
difference of a word's logit. fp32 should show none. Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import SHARED, gold_tags, machine, now, save_result
from sciner.io.jsonl import read_jsonl
from sciner.metrics import evaluate_tags
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence
from sciner.settings import Settings, get_settings, with_overrides

READINGS = {"batched": None, "alone": 1}  # SCINER_BATCH_MAX_WINDOWS of each reading (None: the settings')


def largest_logit_gap(a: list[WordLogits], b: list[WordLogits]) -> float:
    """The largest absolute difference of one word's logit between two readings of the same sentences. Pure."""
    return max(
        (float(np.abs(x.logits - y.logits).max()) for x, y in zip(a, b, strict=True) if x.logits.size), default=0.0
    )


def changed_share(a: list[list[str]], b: list[list[str]]) -> float:
    """The share of sentences whose tags differ between two readings. Pure."""
    return sum(x != y for x, y in zip(a, b, strict=True)) / len(a) if a else 0.0


def reading_predictor(folder: Path, variant: str, settings: Settings, reading: str) -> Predictor:
    """The predictor of one of :data:`READINGS`: the settings' batches, or one sentence per run."""
    most = READINGS[reading]
    reader = settings if most is None else with_overrides(settings, {"batch_max_windows": most})
    return Predictor.from_model_dir(folder, reader, variant)


def read_model(folder: Path, variant: str, dev: list[Sentence], settings: Settings) -> dict:
    gold = gold_tags(dev)
    logits, tags, row = {}, {}, {}
    for reading in READINGS:
        predictor = reading_predictor(folder, variant, settings, reading)
        logits[reading] = predictor.record_logits(dev)
        bias = predictor.meta.o_bias
        tags[reading] = [p.tags for p in predictor.decode_records(logits[reading], dev, bias)]
        unbiased = [p.tags for p in predictor.decode_records(logits[reading], dev, 0.0)]
        row[reading] = {
            "micro_f1_unbiased": evaluate_tags(gold, unbiased).micro_f1,
            "micro_f1": evaluate_tags(gold, tags[reading]).micro_f1,
            "o_bias": bias,
        }
    row["sentences_changed"] = changed_share(tags["batched"], tags["alone"])
    row["largest_logit_gap"] = largest_logit_gap(logits["batched"], logits["alone"])
    return row


def render(payload: dict) -> str:
    lines = [
        f"Run {payload['at']} on {payload['machine']}: `{payload['command']}`",
        f"{payload['sentences']} dev sentences; batched: token budget {payload['batch_token_budget']}, at most "
        f"{payload['batch_max_windows']} windows; alone: one sentence per run.",
        "",
        "| model | engine | F1 batched (unbiased / with bias) | F1 alone (unbiased / with bias) | sentences changed "
        "| largest logit gap |",
        "|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        b, a = r["batched"], r["alone"]
        lines.append(
            f"| `{Path(r['model']).name}` | {r['engine']} | {b['micro_f1_unbiased']:.4f} / {b['micro_f1']:.4f} "
            f"(bias {b['o_bias']:+.2f}) | {a['micro_f1_unbiased']:.4f} / {a['micro_f1']:.4f} | "
            f"{r['sentences_changed']:.1%} | {r['largest_logit_gap']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+", help="model folders")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--engines", nargs="+", default=["int8", "fp32"], choices=("int8", "fp32"))
    ap.add_argument("--name", default="batch-dependence", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    settings = get_settings()
    dev = read_jsonl(args.dev)
    rows = [
        {"model": str(folder), "engine": engine, **read_model(folder, engine, dev, settings)}
        for folder in args.models
        for engine in args.engines
    ]
    payload = {
        "command": " ".join(sys.argv),
        "machine": machine(),
        "at": now(),
        "sentences": len(dev),
        "batch_token_budget": settings.batch_token_budget,
        "batch_max_windows": settings.batch_max_windows,
        "rows": rows,
    }
    text = render(payload)
    print(text)
    save_result(args.name, payload, text)


if __name__ == "__main__":
    main()
