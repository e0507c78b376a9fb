"""Decoding-bias calibration: the model under-predicts entities (precision well above recall), so a
bias subtracted from the ``O`` logit before decoding is fitted on dev and stored in the model folder.

The predictor applies it on every path (service, evaluation, auto-annotation), so calibrating here
changes what all of them see; nothing else needs to know about it.

How the bias is chosen from the grid's dev scores is a rule (``SCINER_O_BIAS_RULE``):

* ``best``: the best dev micro-F1 (ties to the smallest |bias|);
* ``within_noise``: the smallest |bias| whose dev F1 is within one bootstrap standard error (documents
  resampled, paired against the best) of the best: a bias is kept only for the gain dev can tell from noise;
* ``team_median``: the median over the annotator teams of dev of each team's own best bias: every team counts
  once, whatever its size, as a team the model has not seen would be one more of them.

On six annotator teams left out in turn neither alternative read robustly better on the new team than ``best``
(``team_median``'s pooled gain is one team of six), and each cost somewhere on the teams the model was trained on
(docs/quality.md, session 44), so ``best`` is the default.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import evaluate_tags
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence
from training.crowd_layer import team_of
from training.promotion import document_counts, micro_f1, paired_bootstrap, sentence_counts

log = logging.getLogger(__name__)

BIAS_RULES = ("best", "within_noise", "team_median")


@dataclass(frozen=True)
class BiasPoint:
    o_bias: float
    precision: float
    recall: float
    micro_f1: float


@dataclass(frozen=True)
class BiasCalibration:
    o_bias: float
    points: list[BiasPoint]
    sentences: int
    rule: str = "best"

    @property
    def unbiased(self) -> BiasPoint:
        return next(p for p in self.points if p.o_bias == 0.0)

    @property
    def chosen(self) -> BiasPoint:
        return next(p for p in self.points if p.o_bias == self.o_bias)

    def as_metadata(self) -> dict:
        """What goes into ``sciner.json`` under ``decoding``."""
        return {
            "o_bias": self.o_bias,
            "calibration": {
                "rule": self.rule,
                "sentences": self.sentences,
                "f1_unbiased": self.unbiased.micro_f1,
                "f1_calibrated": self.chosen.micro_f1,
                "grid": [asdict(p) for p in self.points],
            },
        }


def bias_grid(minimum: float, maximum: float, step: float) -> list[float]:
    """Multiples of ``step`` from ``minimum`` to ``maximum``; always includes 0 (no bias is a candidate)."""
    lo = int(np.ceil(min(minimum, 0.0) / step - 1e-9))
    hi = int(np.floor(max(maximum, 0.0) / step + 1e-9))
    return [round(i * step, 6) for i in range(lo, hi + 1)]


def _best(biases: Sequence[float], f1: Sequence[float]) -> int:
    """Index of the best F1; on ties the smallest |bias|."""
    return max(range(len(biases)), key=lambda i: (round(f1[i], 6), -abs(biases[i])))


def choose_bias(points: list[BiasPoint]) -> float:
    """Best micro-F1; on ties the smallest |bias| (the less the decoding departs from the model)."""
    return points[_best([p.o_bias for p in points], [p.micro_f1 for p in points])].o_bias


def within_noise_bias(biases: Sequence[float], counts: Sequence[np.ndarray], samples: int = 1000) -> float:
    """The smallest |bias| whose micro-F1 is at most one bootstrap standard error below the best one's, paired
    over the rows of ``counts`` (one ``[documents, 3]`` array of strict entity counts per bias, the order of
    ``biases``); of two biases as far from zero the better. Pure."""
    f1 = [micro_f1(c) for c in counts]
    best = _best(biases, f1)
    for i in sorted(range(len(biases)), key=lambda i: (abs(biases[i]), -f1[i])):
        if i == best:
            break
        ci = paired_bootstrap(counts[i], counts[best], samples=samples)
        if ci.delta >= -ci.sd:
            return biases[i]
    return biases[best]


def team_median_bias(biases: Sequence[float], counts: Sequence[np.ndarray], teams: Sequence[Sequence[int]]) -> float:
    """The median of each team's best bias (its documents' rows of ``counts`` summed; ties to the smallest
    |bias|); of two middle values the one nearer zero. Teams without a gold entity are left out. Pure."""
    chosen = []
    for rows in teams:
        if not counts[0][rows, 2].sum():
            continue
        chosen.append(biases[_best(biases, [micro_f1(c[rows]) for c in counts])])
    if not chosen:
        return 0.0
    chosen.sort()
    middle = chosen[(len(chosen) - 1) // 2 : len(chosen) // 2 + 1]
    return min(middle, key=abs)


def _decoded(
    predictor: Predictor, logits: list[WordLogits], gold: Sequence[Sentence], o_bias: float, propagate: bool
) -> tuple[list[list[str]], list[list[str]]]:
    """(gold tags, predicted tags) of ``gold`` decoded under ``o_bias`` as the predictor decodes (names propagated
    within each document as the settings say, unless ``propagate`` is false)."""
    pred = [p.tags for p in predictor.decode_records(logits, gold, o_bias, propagate)]
    return [[t or OUTSIDE for t in (s.tags or [])] for s in gold], pred


def _point(predictor: Predictor, o_bias: float, gold_tags: list[list[str]], pred: list[list[str]]) -> BiasPoint:
    classes = [t for t in ENTITY_TYPES if f"B-{t}" in predictor.labels]
    ev = evaluate_tags(gold_tags, pred, classes)
    return BiasPoint(o_bias, ev.micro_precision, ev.micro_recall, ev.micro_f1)


def _per_document(gold: Sequence[Sentence], gold_tags: list[list[str]], pred: list[list[str]]) -> np.ndarray:
    counts, _ = document_counts(sentence_counts(gold_tags, pred), [s.doc_id for s in gold])
    return counts


def bias_counts(
    predictor: Predictor, logits: list[WordLogits], gold: Sequence[Sentence], o_bias: float, propagate: bool = True
) -> np.ndarray:
    """``gold`` decoded under ``o_bias`` (:func:`_decoded`): its strict entity counts per document (documents in
    first-seen order of ``gold``), which the rules resample."""
    return _per_document(gold, *_decoded(predictor, logits, gold, o_bias, propagate))


def document_teams(gold: Sequence[Sentence]) -> list[list[int]]:
    """Rows of :func:`bias_counts`' documents grouped by annotator team (teams in sorted order). Pure."""
    documents: dict[str, int] = {}
    team: dict[str, list[int]] = {}
    for s in gold:
        if s.doc_id not in documents:
            documents[s.doc_id] = len(documents)
            team.setdefault(team_of(s) or "", []).append(documents[s.doc_id])
    return [team[t] for t in sorted(team)]


def fit_o_bias(
    predictor: Predictor,
    logits: list[WordLogits],
    gold: Sequence[Sentence],
    grid: list[float],
    propagate: bool = True,
    rule: str = "best",
) -> BiasCalibration:
    """Re-decode logits the model already produced for ``gold`` under every bias of ``grid``; keep the one
    ``rule`` picks (:data:`BIAS_RULES`)."""
    if rule not in BIAS_RULES:  # before decoding the whole grid
        raise ValueError(f"bias rule {rule!r}: one of {', '.join(BIAS_RULES)}")
    decoded = [_decoded(predictor, logits, gold, b, propagate) for b in grid]
    points = [_point(predictor, b, *tags) for b, tags in zip(grid, decoded, strict=True)]
    if rule == "best":  # seqeval's F1 of each point, as before the rules; no document counts needed
        return BiasCalibration(choose_bias(points), points, len(logits), rule)
    counts = [_per_document(gold, *tags) for tags in decoded]
    samples = predictor.settings.bootstrap_samples
    return BiasCalibration(pick_bias(rule, grid, counts, document_teams(gold), samples), points, len(logits), rule)


def pick_bias(
    rule: str,
    biases: Sequence[float],
    counts: Sequence[np.ndarray],
    teams: Sequence[Sequence[int]],
    samples: int = 1000,
) -> float:
    """The bias ``rule`` picks from the per-document strict entity counts of each bias (``teams``: the rows of
    each annotator team, for ``team_median``; ``samples``: bootstrap resamples, for ``within_noise``). Pure."""
    if rule not in BIAS_RULES:
        raise ValueError(f"bias rule {rule!r}: one of {', '.join(BIAS_RULES)}")
    if rule == "within_noise":
        return within_noise_bias(biases, counts, samples)
    if rule == "team_median":
        return team_median_bias(biases, counts, teams)
    return biases[_best(biases, [micro_f1(c) for c in counts])]


def calibrate_o_bias(
    predictor: Predictor,
    gold: list[Sentence],
    grid: list[float],
    logits: list[WordLogits] | None = None,
    rule: str = "best",
) -> BiasCalibration:
    """Run the model once over ``gold`` (or take its ``logits`` for them), re-decode them under every bias of
    ``grid``, keep the one ``rule`` picks."""
    if logits is None:
        logits = predictor.record_logits(gold)
    result = fit_o_bias(predictor, logits, gold, grid, rule=rule)
    log.info(
        "O-logit bias %.2f (rule %s): dev micro-F1 %.4f -> %.4f (P %.3f R %.3f)",
        result.o_bias,
        rule,
        result.unbiased.micro_f1,
        result.chosen.micro_f1,
        result.chosen.precision,
        result.chosen.recall,
    )
    return result
