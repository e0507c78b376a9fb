"""How each O-logit bias rule (``SCINER_O_BIAS_RULE``, ``training/calibrate.py``) carries to data it was not
fitted on: a team the model never saw, and the other half of dev.

Each fold is a model trained with one annotator team left out (``bench/team_holdout.py``) and that split's
folder, ``MODEL=DATA``. The model reads the seen teams' dev (``DATA/dev.jsonl``, what its bias is fitted on) and
the held-out team (``DATA/team.jsonl``) once; each bias of the settings' grid decodes both (names propagated as
the settings say), and every rule then picks from the same per-document counts:

* **the new team**: the bias the rule picks on all of the seen teams' dev, applied to the held-out team (what the
  served model does on a team it has not met);
* **seen teams, cross-fitted**: each half of the dev documents decoded with the bias the rule picks on the other.

A bare ``MODEL`` (trained on every team) is read on gold dev (``--dev``): cross-fitted on halves, and each team with
the bias the rule picks on the other teams. Deltas are paired against the ``best`` rule (the default) over 2,000
resamples of the scored documents; ``pooled`` stacks every fold's held-out team (each a different team's documents).

    .venv/bin/python bench/bias_rules.py --name bias-rules-holdout \\
        var/bench/quality-holdout-prasoonvarshney-crowd-rerun=var/data/holdout-prasoonvarshney \\
        var/bench/quality-holdout-divyanshusheth-crowd-rerun=var/data/holdout-divyanshusheth

Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import SHARED, env_prefix, machine, now, save_result, settings_env
from sciner.io.jsonl import read_jsonl
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import get_settings
from training.calibrate import BIAS_RULES, bias_counts, bias_grid, document_teams, pick_bias
from training.promotion import micro_f1, paired_bootstrap

RULES = ("none", *BIAS_RULES)  # none: decode at 0, for reference
REFERENCE = "best"


@dataclass(frozen=True)
class GridCounts:
    """Per-document strict entity counts of one model's reading of one split, for every bias of the grid."""

    biases: list[float]
    counts: list[np.ndarray]  # one [documents, 3] array per bias
    teams: list[list[int]]  # document rows of each annotator team
    documents: list[str]  # the rows' document ids

    def at(self, bias: float, rows: list[int] | None = None) -> np.ndarray:
        c = self.counts[self.biases.index(bias)]
        return c if rows is None else c[rows]

    def pick(self, rule: str, rows: list[int] | None = None) -> float:
        """The bias ``rule`` picks on the documents ``rows`` (all when ``None``). Pure."""
        if rule == "none":
            return 0.0
        rows = rows if rows is not None else list(range(len(self.documents)))
        position = {r: k for k, r in enumerate(rows)}
        teams = [[position[r] for r in team if r in position] for team in self.teams]
        return pick_bias(rule, self.biases, [c[rows] for c in self.counts], [t for t in teams if t])


def grid_counts(predictor: Predictor, sentences: list[Sentence], biases: list[float]) -> GridCounts:
    logits = predictor.record_logits(sentences)
    counts = [bias_counts(predictor, logits, sentences, b) for b in biases]
    return GridCounts(biases, counts, document_teams(sentences), list(dict.fromkeys(s.doc_id for s in sentences)))


def document_halves(documents: list[str]) -> list[list[int]]:
    """Rows of the even and the odd documents sorted by id: ``bench.common.halves_by_document``'s halves, the
    ones ``bench/quality.py``'s cross-fitted column uses. Pure."""
    rank = {d: k for k, d in enumerate(sorted(documents))}
    return [[r for r, d in enumerate(documents) if rank[d] % 2 == half] for half in (0, 1)]


def crossfitted(grid: GridCounts, rule: str, folds: list[list[int]]) -> tuple[np.ndarray, list[float]]:
    """Each fold's rows decoded with the bias ``rule`` picks on the other folds' rows; rows in fold order."""
    parts, biases = [], []
    for k, held in enumerate(folds):
        fit = [r for j, fold in enumerate(folds) if j != k for r in fold]
        bias = grid.pick(rule, fit)
        biases.append(bias)
        parts.append(grid.at(bias, held))
    return np.concatenate(parts), biases


def compare(counts: dict[str, np.ndarray], samples: int) -> dict[str, dict]:
    """Each rule's micro-F1 and its paired delta against the reference rule's."""
    out = {}
    for rule, c in counts.items():
        row: dict = {"micro_f1": micro_f1(c)}
        if rule != REFERENCE:
            ci = paired_bootstrap(c, counts[REFERENCE], samples=samples)
            row.update(delta=ci.delta, lower=ci.lower, upper=ci.upper)
        out[rule] = row
    return out


def cell(row: dict, bias: str) -> str:
    text = f"{row['micro_f1']:.4f} ({bias})"
    if "delta" in row:
        text += f", {100 * row['delta']:+.2f} [{100 * row['lower']:+.2f}, {100 * row['upper']:+.2f}]"
    return text


def fold_arg(value: str) -> tuple[Path, Path | None]:
    model, _, data = value.partition("=")
    return Path(model), Path(data) if data else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folds", type=fold_arg, nargs="+", help="MODEL=DATA (a team left out) or MODEL (all teams)")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl", help="gold dev for a bare MODEL")
    ap.add_argument("--samples", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--name", default="bias-rules", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    settings = get_settings()
    biases = bias_grid(settings.o_bias_min, settings.o_bias_max, settings.o_bias_step)
    lines = [
        f"Run {now()} on {machine()}: `{env_prefix(settings_env())}{' '.join(sys.argv)}`",
        f"int8 as served, names propagated: {settings.name_propagation}; bias grid {biases[0]}..{biases[-1]} step "
        f"{settings.o_bias_step}; each cell micro-F1 (the bias, or each fold's), delta vs `{REFERENCE}` in points "
        f"with its 95% interval over {args.samples} document resamples.",
        "",
        "| model | scored on | " + " | ".join(RULES) + " |",
        "|---|---|" + "---|" * len(RULES),
    ]
    payload, pooled = [], {rule: [] for rule in RULES}
    for model, data in args.folds:
        predictor = Predictor.from_model_dir(model, settings)
        seen = grid_counts(predictor, read_jsonl(data / "dev.jsonl" if data else args.dev), biases)
        readings: dict[str, tuple[dict[str, np.ndarray], dict[str, str]]] = {}
        if data:
            team = grid_counts(predictor, read_jsonl(data / "team.jsonl"), biases)
            picked = {rule: seen.pick(rule) for rule in RULES}
            readings["the new team"] = (
                {rule: team.at(b) for rule, b in picked.items()},
                {rule: f"{b:+.2f}" for rule, b in picked.items()},
            )
            for rule in RULES:
                pooled[rule].append(team.at(picked[rule]))
        folds = {"dev halves, cross-fitted": document_halves(seen.documents)}
        if not data:
            folds["each team with the others' bias"] = seen.teams
        for what, rows in folds.items():
            fitted = {rule: crossfitted(seen, rule, rows) for rule in RULES}
            readings[("seen teams' " if data else "") + what] = (
                {rule: c for rule, (c, _) in fitted.items()},
                {
                    rule: "/".join(f"{b:+.2f}" for b in bs) if len(bs) <= 2 else "per team"
                    for rule, (_, bs) in fitted.items()
                },
            )
        for what, (counts, picked) in readings.items():
            scores = compare(counts, args.samples)
            lines.append(f"| `{model.name}` | {what} | " + " | ".join(cell(scores[r], picked[r]) for r in RULES) + " |")
            payload.append(
                {
                    "model": str(model),
                    "data": str(data) if data else None,
                    "scored_on": what,
                    "biases": picked,
                    "scores": scores,
                }
            )
    if any(pooled.values()):
        scores = compare({rule: np.concatenate(c) for rule, c in pooled.items()}, args.samples)
        lines.append(
            "| pooled | every fold's new team | " + " | ".join(cell(scores[r], "each fold's") for r in RULES) + " |"
        )
        payload.append({"model": "pooled", "scored_on": "every fold's new team", "scores": scores})
    text = "\n".join(lines)
    print(text)
    save_result(
        args.name,
        {"command": " ".join(sys.argv), "env": settings_env(), "machine": machine(), "at": now(), "rows": payload},
        text,
    )


if __name__ == "__main__":
    main()
