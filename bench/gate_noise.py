"""Noise floor of the promotion gate and its false-promotion rate on null pairs.

1. Train the same recipe with several seeds (small scale: ``--sentences`` gold train sentences with an entity,
   outside the evaluation split, ``--epochs`` epochs, early stopping and the O-bias on a ``--dev-sentences`` sample of
   gold dev) and score every model on the gate's evaluation split (carved from gold train by document,
   as a round does): the spread of eval micro-F1 across seeds is the noise floor.
2. Every ordered pair of two seeds is a **null round**: a candidate trained on exactly the champion's
   data with another seed. Run the gate (``training.promotion.decide``, as a round calls it) on each
   pair, on the real evaluation split and on ``--outer`` document resamples of it (other evaluation sets
   of the same size), from the models' per-document counts: the share promoted is the false-promotion
   rate, per rule.

    nice -n 10 python bench/gate_noise.py                 # 4 seeds x 500 sentences x 3 epochs (~15 min, 2 cores)
    python bench/gate_noise.py --analyse-only             # re-run step 2 from var/gate-noise/
    python bench/gate_noise.py --tag=-docs35 --sentences 6000 --learning-rate 1e-4 --batch-size 16 \
        --dev-sentences 1000 --threads 2                  # sigma at the 35-document recipe's scale (~8.5 min a seed)

Models and per-document counts stay in ``var/gate-noise<tag>/``; the result is ``bench/results/gate-noise<tag>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, RESULTS, SHARED, machine, now

if TYPE_CHECKING:
    from sciner.settings import Settings

log = logging.getLogger("bench.gate_noise")
WORK = REPO / "var" / "gate-noise"
RULES = ("bootstrap_and_spread", "bootstrap", "spread", "delta")


def train_one(seed: int, train: list, dev: list, evaluation: list, settings: Settings, work: Path) -> dict:
    """Train, export and score one seed; cached in ``<work>/seed-<n>/result.json``."""
    from sciner.labels import OUTSIDE
    from sciner.predictor import Predictor
    from sciner.settings import with_overrides
    from training.evaluate import evaluate_predictor
    from training.pipeline import train_and_export
    from training.promotion import document_counts, sentence_counts

    out = work / f"seed-{seed}"
    cached = out / "result.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    s = with_overrides(settings, {"seed": seed})
    t = time.perf_counter()
    summary = train_and_export(train, dev, out / "model", s, progress=False)
    ev, pred = evaluate_predictor(Predictor.from_model_dir(out / "model", s), evaluation)
    gold_tags = [[t or OUTSIDE for t in (x.tags or [])] for x in evaluation]
    counts, docs = document_counts(sentence_counts(gold_tags, pred), [x.doc_id or x.id for x in evaluation])
    result = {
        "seed": seed,
        "eval_micro_f1": ev.micro_f1,
        "eval_per_class_f1": {k: v.f1 for k, v in ev.per_class.items()},
        "support": {k: v.support for k, v in ev.per_class.items()},
        "dev_micro_f1": summary.get("dev", {}).get("micro_f1"),
        "best_epoch": summary.get("best_epoch"),
        "o_bias": summary.get("o_bias"),
        "seconds": round(time.perf_counter() - t, 1),
        "documents": docs,
        "doc_counts": counts.tolist(),
    }
    out.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    log.info(
        "seed %d: eval micro-F1 %.4f (dev %.4f) in %.0f s",
        seed,
        ev.micro_f1,
        result["dev_micro_f1"] or 0,
        result["seconds"],
    )
    return result


def null_pair_rates(
    models: list[dict], seed_sd: float, *, samples: int, outer: int, confidence: float, spread_z: float, seed: int = 0
) -> dict:
    """Share of null pairs (candidate, champion = two seeds of one recipe) each rule promotes, on the real
    evaluation split and on ``outer`` document resamples of it. Pure given the per-document counts."""
    from training.promotion import ModelScores, decide, micro_f1, paired_bootstrap

    counts = [np.array(m["doc_counts"], dtype=np.int64) for m in models]
    n_docs = len(counts[0])
    rng = np.random.default_rng(seed)
    replicates = [np.arange(n_docs)] + [rng.integers(0, n_docs, n_docs) for _ in range(outer)]
    promoted = dict.fromkeys(RULES, 0)
    lowers, deltas, trials = [], [], 0
    for cand, champ in itertools.permutations(counts, 2):
        for r, idx in enumerate(replicates):
            c, h = cand[idx], champ[idx]
            ci = paired_bootstrap(c, h, samples, seed + r, confidence=confidence)
            # per-class scores are not resampled: the class guard is left out (it can only reject more)
            cs = ModelScores(micro_f1(c), {}, {})
            hs = ModelScores(micro_f1(h), {}, {})
            trials += 1
            lowers.append(ci.lower)
            deltas.append(ci.delta)
            for rule in RULES:
                promoted[rule] += decide(cs, hs, rule=rule, ci=ci, seed_sd=seed_sd, spread_z=spread_z).promote
    return {
        "pairs": len(counts) * (len(counts) - 1),
        "replicates_per_pair": len(replicates),
        "trials": trials,
        "seed_f1_sd": seed_sd,
        "spread_threshold": spread_z * np.sqrt(2) * seed_sd,
        "false_promotion_rate": {rule: promoted[rule] / trials for rule in RULES},
        "delta_sd": float(np.std(deltas)),
        "mean_ci_lower": float(np.mean(lowers)),
    }


def real_split_decisions(models: list[dict], seed_sd: float, settings: object) -> list[dict]:
    """The gate's decision on every null pair on the real evaluation split, with the recorded fields."""
    from training.promotion import ModelScores, decide, micro_f1, paired_bootstrap

    out = []
    for a, b in itertools.permutations(models, 2):
        c, h = np.array(a["doc_counts"]), np.array(b["doc_counts"])
        ci = paired_bootstrap(
            c,
            h,
            settings.bootstrap_samples,
            settings.seed,  # type: ignore[attr-defined]
            confidence=settings.bootstrap_confidence,
        )  # type: ignore[attr-defined]
        d = decide(
            ModelScores(micro_f1(c), a["eval_per_class_f1"], a["support"]),
            ModelScores(micro_f1(h), b["eval_per_class_f1"], b["support"]),
            rule=settings.promotion_rule,
            ci=ci,
            seed_sd=seed_sd,  # type: ignore[attr-defined]
            spread_z=settings.spread_z,
            max_class_drop=settings.max_class_drop,  # type: ignore[attr-defined]
            champion_name=f"seed {b['seed']}",
        )
        out.append(
            {
                "candidate_seed": a["seed"],
                "champion_seed": b["seed"],
                "decision": d.label,
                "fired": d.fired,
                "delta": d.delta,
                "interval": [ci.lower, ci.upper],
                "threshold": d.spread_threshold,
                "resamples": ci.samples,
                "documents": ci.units,
                "reason": d.reason,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--sentences", type=int, default=500, help="Gold train sentences per model (outside eval).")
    ap.add_argument("--dev-sentences", type=int, default=300, help="Gold dev sample: early stopping, O-bias.")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--learning-rate", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--outer", type=int, default=200, help="Document resamples of the evaluation split per pair.")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--threads", type=int, default=1, help="Torch and ONNX Runtime threads (1: cores are shared).")
    ap.add_argument("--tag", default="", help="Suffix of the work folder and the result file (another recipe).")
    ap.add_argument("--analyse-only", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "optimum", "onnxruntime", "training", "sciner"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from sciner.io.jsonl import read_jsonl
    from sciner.settings import Settings
    from training.eval_split import carve

    work = WORK.with_name(WORK.name + args.tag)
    settings = Settings(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        torch_threads=args.threads,
        intra_op_threads=args.threads,
        home=work / "home",
    )
    split = carve(read_jsonl(args.train), settings.gold_eval_fraction, settings.gold_eval_salt)
    # sentences with at least one entity: at this size an all-O majority teaches a 3-epoch model to predict nothing
    labelled = [x for x in split.train if any(t and t != "O" for t in (x.tags or []))]
    train = random.Random(13).sample(labelled, args.sentences)
    dev = random.Random(13).sample(read_jsonl(args.dev), args.dev_sentences)
    log.info(
        "eval split %s: %d documents, %d sentences; train %d sentences, dev %d",
        split.source,
        len(split.documents),
        len(split.eval),
        len(train),
        len(dev),
    )
    started = time.perf_counter()
    models = []
    for seed in args.seeds:
        if args.analyse_only and not (work / f"seed-{seed}" / "result.json").is_file():
            continue
        models.append(train_one(seed, train, dev, split.eval, settings, work))
    f1 = np.array([m["eval_micro_f1"] for m in models])
    seed_sd = float(f1.std(ddof=1)) if len(f1) > 1 else 0.0
    per_class = (
        {
            c: float(np.std([m["eval_per_class_f1"].get(c, 0.0) for m in models], ddof=1))
            for c in models[0]["eval_per_class_f1"]
        }
        if len(models) > 1
        else {}
    )
    common = {
        "samples": settings.bootstrap_samples,
        "outer": args.outer,
        "confidence": settings.bootstrap_confidence,
        "spread_z": settings.spread_z,
    }
    result = {
        "recipe": {
            "sentences": len(train),
            "dev_sentences": len(dev),
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "batch_size": args.batch_size,
            "base_model": Path(settings.base_model).name,
        },
        "eval_split": {**split.tags, "sentences": len(split.eval)},
        "models": [{k: v for k, v in m.items() if k not in ("doc_counts", "documents")} for m in models],
        "noise_floor": {
            "eval_micro_f1_mean": float(f1.mean()),
            "eval_micro_f1_sd": seed_sd,
            "eval_micro_f1_range": float(f1.max() - f1.min()),
            "per_class_f1_sd": per_class,
        },
        "gate_settings": {
            "promotion_rule": settings.promotion_rule,
            "bootstrap_samples": settings.bootstrap_samples,
            "bootstrap_confidence": settings.bootstrap_confidence,
            "seed_f1_sd": settings.seed_f1_sd,
            "spread_z": settings.spread_z,
            "max_class_drop": settings.max_class_drop,
        },
        "null_pairs_measured_sd": null_pair_rates(models, seed_sd, **common),
        "null_pairs_default_sd": null_pair_rates(models, settings.seed_f1_sd, **common),
        "real_split_decisions": real_split_decisions(models, settings.seed_f1_sd, settings),
        "machine": machine(),
        "finished_at": now(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"gate-noise{args.tag}.json").write_text(json.dumps(result, indent=2))
    log.info("noise floor: eval micro-F1 %s, sd %.4f", np.round(f1, 4).tolist(), seed_sd)
    for key in ("null_pairs_measured_sd", "null_pairs_default_sd"):
        log.info("%s: false-promotion rate %s", key, result[key]["false_promotion_rate"])


if __name__ == "__main__":
    main()
