"""Evaluate a predictor on gold sentences with the same code the service runs."""

from __future__ import annotations

from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import Evaluation, evaluate_tags
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence


def predict_tags(predictor: Predictor, sentences: list[Sentence]) -> list[list[str]]:
    return [p.tags for p in predictor.predict_records(sentences)]


def evaluate_predictor(predictor: Predictor, gold: list[Sentence]) -> tuple[Evaluation, list[list[str]]]:
    """(evaluation, predicted tags). Unknown gold tags (``None``) count as ``O``."""
    return evaluate_logits(predictor, predictor.record_logits(gold), gold)


def evaluate_logits(
    predictor: Predictor, logits: list[WordLogits], gold: list[Sentence]
) -> tuple[Evaluation, list[list[str]]]:
    """:func:`evaluate_predictor` of logits the model already produced for ``gold`` (decoded as
    ``predict_records`` decodes them: the predictor's bias, names propagated within each document)."""
    pred = [p.tags for p in predictor.decode_records(logits, gold)]
    gold_tags = [[t or OUTSIDE for t in (s.tags or [])] for s in gold]
    classes = [t for t in ENTITY_TYPES if f"B-{t}" in predictor.labels]
    return evaluate_tags(gold_tags, pred, classes), pred
