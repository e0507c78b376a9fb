"""Quality benchmark: fine-tune on the shared SciNER gold train set, report dev F1 per class.

    .venv/bin/python bench/quality.py --limit 12000 --epochs 4

CPU time forces a documented subset on 2 cores: whole documents (seeded) up to ``--limit``
sentences. Writes bench/results/quality.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, SHARED, machine, now, sample_by_document, save_result
from sciner.io.jsonl import read_jsonl
from sciner.predictor import Predictor
from sciner.settings import get_settings
from training.evaluate import evaluate_predictor
from training.pipeline import train_and_export


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--limit", type=int, default=12000, help="max training sentences (whole documents)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "quality-model")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    settings = get_settings().model_copy(update={"epochs": args.epochs})
    train = sample_by_document(read_jsonl(args.train), args.limit, args.seed)
    dev = read_jsonl(args.dev)
    t0 = time.perf_counter()
    summary = train_and_export(train, dev, args.out, settings, sources={"train": args.train, "dev": args.dev})
    seconds = time.perf_counter() - t0
    rows = []
    for variant in ("fp32", "int8"):
        evaluation, _ = evaluate_predictor(Predictor.from_model_dir(args.out, settings, variant), dev)
        rows.append((variant, evaluation))
    md = [
        f"Run {now()} on {machine()}: `{' '.join(sys.argv)}`",
        f"train: {len(train)} sentences (whole documents, seed {args.seed}) of {args.train.name}; "
        f"dev: {len(dev)} sentences; base model {Path(settings.base_model).name}; "
        f"epochs {args.epochs} (best {summary['best_epoch']}); train+export {seconds / 60:.1f} min",
        "",
    ]
    for variant, evaluation in rows:
        md += [f"### dev, ONNX {variant}", "", evaluation.table(), ""]
    text = "\n".join(md)
    print(text)
    save_result(
        "quality",
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "summary": summary,
            "seconds": seconds,
            "dev": {v: e.to_dict() for v, e in rows},
        },
        text,
    )


if __name__ == "__main__":
    main()
