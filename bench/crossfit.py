"""Cross-fitted decoding: each half of the dev documents decoded with the O-logit bias that scores best on the
other half (the bias a model is served with, fitted where it is not scored). ``bench/quality.py``'s
*cross-fitted* column and ``bench/paired.py --bias crossfit`` both read it from here."""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import halves_by_document
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence
from training.calibrate import bias_grid, fit_o_bias


@dataclass(frozen=True)
class CrossFit:
    tags: list[list[str]]  # in dev order
    biases: list[float]  # fitted on the even documents (decoding the odd), then on the odd


def crossfit_decode(
    predictor: Predictor, dev: list[Sentence], logits: list[WordLogits], propagate: bool = True
) -> CrossFit:
    """Decode ``logits`` (the model's over ``dev``) half by half with the bias fitted on the other half, on the
    settings' bias grid. Without ``propagate`` the bias is fitted and applied with name propagation off."""
    settings = predictor.settings
    grid = bias_grid(settings.o_bias_min, settings.o_bias_max, settings.o_bias_step)
    tags: list[list[str]] = [[] for _ in dev]
    biases = []
    halves = halves_by_document(dev)
    for fit, held in ((halves[0], halves[1]), (halves[1], halves[0])):
        bias = fit_o_bias(predictor, [logits[i] for i in fit], [dev[i] for i in fit], grid, propagate).o_bias
        biases.append(bias)
        decoded = predictor.decode_records([logits[i] for i in held], [dev[i] for i in held], bias, propagate)
        for i, pred in zip(held, decoded, strict=True):
            tags[i] = pred.tags
    return CrossFit(tags, biases)
