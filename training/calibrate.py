"""Decoding-bias calibration: the model under-predicts entities (precision well above recall), so a
bias subtracted from the ``O`` logit before decoding is fitted on dev and stored in the model folder.

The predictor applies it on every path (service, evaluation, auto-annotation), so calibrating here
changes what all of them see; nothing else needs to know about it.
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

log = logging.getLogger(__name__)


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


def choose_bias(points: list[BiasPoint]) -> float:
    """Best micro-F1; on ties the smallest |bias| (the less the decoding departs from the model)."""
    best = max(points, key=lambda p: (round(p.micro_f1, 6), -abs(p.o_bias)))
    return best.o_bias


def score_bias(
    predictor: Predictor, logits: list[WordLogits], gold: Sequence[Sentence], o_bias: float, propagate: bool = True
) -> BiasPoint:
    """``gold`` decoded under ``o_bias`` as the predictor decodes (names propagated within each document
    as the settings say, unless ``propagate`` is false)."""
    pred = [p.tags for p in predictor.decode_records(logits, gold, o_bias, propagate)]
    classes = [t for t in ENTITY_TYPES if f"B-{t}" in predictor.labels]
    ev = evaluate_tags([[t or OUTSIDE for t in (s.tags or [])] for s in gold], pred, classes)
    return BiasPoint(o_bias, ev.micro_precision, ev.micro_recall, ev.micro_f1)


def fit_o_bias(
    predictor: Predictor,
    logits: list[WordLogits],
    gold: Sequence[Sentence],
    grid: list[float],
    propagate: bool = True,
) -> BiasCalibration:
    """Re-decode logits the model already produced for ``gold`` under every bias of ``grid``; keep the best."""
    points = [score_bias(predictor, logits, gold, b, propagate) for b in grid]
    return BiasCalibration(choose_bias(points), points, len(logits))


def calibrate_o_bias(
    predictor: Predictor, gold: list[Sentence], grid: list[float], logits: list[WordLogits] | None = None
) -> BiasCalibration:
    """Run the model once over ``gold`` (or take its ``logits`` for them), re-decode them under every bias of
    ``grid``."""
    if logits is None:
        logits = predictor.record_logits(gold)
    result = fit_o_bias(predictor, logits, gold, grid)
    log.info(
        "O-logit bias %.2f: dev micro-F1 %.4f -> %.4f (P %.3f R %.3f)",
        result.o_bias,
        result.unbiased.micro_f1,
        result.chosen.micro_f1,
        result.chosen.precision,
        result.chosen.recall,
    )
    return result
