"""Learning-rate pilot: short fine-tunes of one encoder on a gold subset, dev F1 after each epoch.

    .venv/bin/python bench/lr_sweep.py --name mpnet --base-model var/encoders/all-mpnet-base-v2 \\
        --docs 12 --dev-docs 6 --epochs 2 --lr 5e-5 --head-lr-factor 1 20
    .venv/bin/python bench/lr_sweep.py --name minilm --docs 12 --dev-docs 6 --epochs 2 --lr 3e-4

Before an hour-long teacher run, this says whether the encoder learns at all with the project's own
trainer (issue 14: a pilot outside it saw MPNet predict only ``O`` after <= 500 steps). Every pair of
``--lr`` x ``--head-lr-factor`` trains from the same start on the same windows; the dev pass after each
epoch is the PyTorch predictor (no export), no decoding bias. Writes bench/results/lr-sweep-<name>.json.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, SHARED, machine, now, save_result
from bench.reproduce import pick_documents
from sciner.io.jsonl import read_jsonl
from sciner.settings import get_settings
from training.trainer import train_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="run", help="result file: bench/results/lr-sweep-<name>.json")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--base-model", default=None, help="encoder folder (default SCINER_BASE_MODEL)")
    ap.add_argument("--docs", type=int, default=12, help="train documents (seeded pick)")
    ap.add_argument("--dev-docs", type=int, default=6, help="dev documents (seeded pick)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--empty-ratio", type=float, default=0.1, help="SCINER_TRAIN_EMPTY_RATIO")
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-4])
    ap.add_argument("--head-lr-factor", type=float, nargs="+", default=[1.0])
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    base = get_settings()
    _, train_ids = pick_documents(args.train, args.docs, args.seed)
    _, dev_ids = pick_documents(args.dev, args.dev_docs, args.seed)
    train = [s for s in read_jsonl(args.train) if s.doc_id in set(train_ids)]
    dev = [s for s in read_jsonl(args.dev) if s.doc_id in set(dev_ids)]
    runs = []
    lines = [f"Run {now()} on {machine()}: `{' '.join(sys.argv)}`", ""]
    for lr in args.lr:
        for factor in args.head_lr_factor:
            settings = base.model_copy(
                update={
                    "base_model": args.base_model or base.base_model,
                    "epochs": args.epochs,
                    "learning_rate": lr,
                    "head_lr_factor": factor,
                    "train_empty_ratio": args.empty_ratio,
                    "patience": args.epochs,
                }
            )
            out = REPO / "var" / "bench" / f"lr-sweep-{args.name}"
            t0 = time.perf_counter()
            result = train_model(train, dev, out, settings, progress=sys.stderr.isatty())
            seconds = time.perf_counter() - t0
            shutil.rmtree(out, ignore_errors=True)
            curve = [round(h.get("dev_micro_f1", 0.0), 4) for h in result.history]
            lines.append(f"- lr {lr:g}, head x{factor:g}: dev micro-F1 by epoch {curve} ({seconds / 60:.1f} min)")
            print(lines[-1], flush=True)
            runs.append(
                {
                    "lr": lr,
                    "head_lr_factor": factor,
                    "dev_f1_by_epoch": curve,
                    "history": result.history,
                    "minutes": round(seconds / 60, 2),
                }
            )
    save_result(
        f"lr-sweep-{args.name}",
        {
            "command": " ".join(sys.argv),
            "when": now(),
            "machine": machine(),
            "base_model": Path(args.base_model or base.base_model).name,
            "train": {"documents": len(train_ids), "sentences": len(train)},
            "dev": {"documents": len(dev_ids), "sentences": len(dev)},
            "epochs": args.epochs,
            "empty_ratio": args.empty_ratio,
            "runs": runs,
        },
        "\n".join(lines) + "\n",
    )


if __name__ == "__main__":
    main()
