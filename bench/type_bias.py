"""Does a decoding bias per entity type beat the one O-logit bias the predictor applies? Cross-fitted on dev.

    .venv/bin/python bench/type_bias.py var/bench/quality-student-3ep --name type-bias-student-3ep

The model reads gold dev once (int8, as served, each sentence with its document). Its logits are then
decoded under biases added to each type's ``B-``/``I-`` logits: one bias shared by all types (the
same as lowering the ``O`` logit, what ``SCINER_CALIBRATE_O_BIAS`` fits) and one bias per type, fitted by
coordinate ascent over a grid. Each is fitted on half of the dev documents and scored on the other half,
both ways, pooled (the honest estimate of what it buys on unseen data, as in ``bench/quality.py``).
Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import SHARED, halves_by_document, machine, now, save_result
from sciner.io.jsonl import read_jsonl
from sciner.labels import OUTSIDE
from sciner.metrics import evaluate_tags
from sciner.predictor import Predictor, WordLogits
from sciner.settings import get_settings

GRID = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def logit_shift(labels: Sequence[str], bias_by_type: dict[str, float]) -> np.ndarray:
    """What to add to a word's logits: each type's bias on its ``B-`` and ``I-`` labels, 0 on ``O``. Pure."""
    return np.array([bias_by_type.get(lab[2:], 0.0) if lab != OUTSIDE else 0.0 for lab in labels])


def fit_shared(score: Callable[[dict[str, float]], float], types: Sequence[str], grid: Sequence[float]) -> dict:
    """The one bias for all types that scores best (ties: the smallest in magnitude). Pure."""
    best = max(sorted(grid, key=abs), key=lambda b: score(dict.fromkeys(types, b)))
    return dict.fromkeys(types, best)


def fit_per_type(
    score: Callable[[dict[str, float]], float], types: Sequence[str], grid: Sequence[float], passes: int = 2
) -> dict[str, float]:
    """Coordinate ascent: each type's bias in turn set to its best grid value, the others held; ``passes``
    rounds over the types. A change is kept only if it raises the score. Pure."""
    bias = dict.fromkeys(types, 0.0)
    best = score(bias)
    for _ in range(passes):
        for ty in types:
            for b in grid:
                trial = {**bias, ty: b}
                s = score(trial)
                if s > best + 1e-12:
                    best, bias = s, trial
    return bias


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="model folder (its int8 engine)")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--passes", type=int, default=2, help="coordinate-ascent rounds over the types")
    ap.add_argument("--name", default="type-bias", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    dev = read_jsonl(args.dev)
    predictor = Predictor.from_model_dir(args.model, get_settings(), "int8")
    logits = [w.logits for w in predictor.record_logits(dev)]
    gold = [[t or OUTSIDE for t in (s.tags or [])] for s in dev]
    types = sorted({lab[2:] for lab in predictor.labels if lab != OUTSIDE})

    def decoded(idx: Sequence[int], bias: dict[str, float]) -> list[list[str]]:
        shift = logit_shift(predictor.labels, bias)
        shifted = [WordLogits(logits[i] + shift, 1) for i in idx]
        return [p.tags for p in predictor.decode_records(shifted, [dev[i] for i in idx], 0.0)]

    def scorer(idx: Sequence[int]) -> Callable[[dict[str, float]], float]:
        return lambda bias: evaluate_tags([gold[i] for i in idx], decoded(idx, bias)).micro_f1

    everything = range(len(dev))
    results: dict[str, dict] = {"none": {"micro_f1": scorer(everything)({}), "fitted": []}}
    for method, fit in (("shared", fit_shared), ("per_type", lambda s, t, g: fit_per_type(s, t, g, args.passes))):
        pooled_gold, pooled_pred, fitted = [], [], []
        halves = halves_by_document(dev)
        for fit_on, score_on in ((halves[0], halves[1]), (halves[1], halves[0])):
            bias = fit(scorer(fit_on), types, GRID)
            fitted.append(bias)
            pooled_gold += [gold[i] for i in score_on]
            pooled_pred += decoded(score_on, bias)
        results[method] = {"micro_f1": evaluate_tags(pooled_gold, pooled_pred).micro_f1, "fitted": fitted}

    payload = {"command": " ".join(sys.argv), "machine": machine(), "at": now(), "results": results}
    text = render(payload, len(dev), len({s.doc_id for s in dev}))
    print(text)
    save_result(args.name, payload, text)


def describe(bias: dict[str, float]) -> str:
    """``all +0.25`` for a shared bias, ``TaskName -0.50, ...`` for per-type ones, ``0`` for none. Pure."""
    values = set(bias.values())
    if values <= {0.0}:
        return "0"
    if len(values) == 1:
        return f"all {values.pop():+.2f}"
    return ", ".join(f"{t} {b:+.2f}" for t, b in bias.items() if b)


def render(payload: dict, sentences: int, documents: int) -> str:
    lines = [
        f"Run {payload['at']} on {payload['machine']}: `{payload['command']}`",
        f"{sentences} dev sentences of {documents} documents, int8; biases fitted on one half of the documents, "
        "scored on the other, both ways, pooled (`none`: nothing fitted, all of dev).",
        "",
        "| decoding bias | cross-fitted micro-F1 | fitted on the even / the odd documents |",
        "|---|---|---|",
    ]
    for method, r in payload["results"].items():
        lines.append(f"| {method} | {r['micro_f1']:.4f} | {' / '.join(describe(f) for f in r['fitted'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
