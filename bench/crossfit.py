"""Cross-fitted decoding: each half of the dev documents decoded with the O-logit bias that scores best on the
other half (the bias a model is served with, fitted where it is not scored). ``bench/quality.py``'s
*cross-fitted* column and ``bench/paired.py --bias crossfit`` both read it from here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import halves_by_document
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence
from training.calibrate import bias_grid, fit_o_bias


@dataclass(frozen=True)
class CrossFit:
    tags: list[list[str]]  # in dev order
    biases: list[float]  # one per fold, fitted on the others: the even documents (decoding the odd), then the odd


def crossfit_decode(
    predictor: Predictor,
    dev: list[Sentence],
    logits: list[WordLogits],
    propagate: bool = True,
    folds: Sequence[Sequence[int]] | None = None,
    rule: str | None = None,
) -> CrossFit:
    """Decode ``logits`` (the model's over ``dev``) fold by fold with the bias fitted on the other folds, on the
    settings' bias grid; the folds are the two halves of the dev documents unless given (``folds_by_team``: each
    team with the bias of the others). Without ``propagate`` the bias is fitted and applied with name propagation
    off. The bias is picked by ``rule`` (default: the settings' ``o_bias_rule``)."""
    settings = predictor.settings
    rule = rule or settings.o_bias_rule
    grid = bias_grid(settings.o_bias_min, settings.o_bias_max, settings.o_bias_step)
    tags: list[list[str]] = [[] for _ in dev]
    biases = []
    folds = folds if folds is not None else halves_by_document(dev)
    for k, held in enumerate(folds):
        fit = [i for j, fold in enumerate(folds) if j != k for i in fold]
        rows = [dev[i] for i in fit]
        bias = fit_o_bias(predictor, [logits[i] for i in fit], rows, grid, propagate, rule).o_bias
        biases.append(bias)
        decoded = predictor.decode_records([logits[i] for i in held], [dev[i] for i in held], bias, propagate)
        for i, pred in zip(held, decoded, strict=True):
            tags[i] = pred.tags
    return CrossFit(tags, biases)
