"""Per-word label probabilities -> BIO tags -> entity spans (pure functions, no model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sciner.labels import OUTSIDE, split_tag
from sciner.records import Entity, Token


@dataclass(slots=True)
class WordSpan:
    """An entity over words ``[start, end)`` with its type and score."""

    start: int
    end: int
    label: str
    score: float


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start_ok[L], trans_ok[L, L]) for strict IOB2: ``I-X`` only after ``B-X`` or ``I-X``."""
    n = len(labels)
    start_ok = np.ones(n, dtype=bool)
    trans_ok = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(labels):
        prefix, etype = split_tag(tag)
        if prefix == "I":
            start_ok[j] = False
            for i, prev in enumerate(labels):
                trans_ok[i, j] = split_tag(prev)[1] == etype and split_tag(prev)[0] in ("B", "I")
    return start_ok, trans_ok


def viterbi(probs: np.ndarray, start_ok: np.ndarray, trans_ok: np.ndarray) -> list[int]:
    """Most probable label sequence that is valid IOB2, from per-word probabilities [T, L]."""
    if len(probs) == 0:
        return []
    log_p = np.log(np.clip(probs, 1e-12, 1.0))
    penalty = np.where(trans_ok, 0.0, -np.inf)
    score = np.where(start_ok, log_p[0], -np.inf)
    back = np.zeros(probs.shape, dtype=np.int64)
    for t in range(1, len(probs)):
        cand = score[:, None] + penalty
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_p[t]
    path = [int(score.argmax())]
    for t in range(len(probs) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def tags_to_spans(tags: Sequence[str | None], word_scores: Sequence[float] | None = None) -> list[WordSpan]:
    """Entity spans of an IOB2 tag sequence; score = mean of the word scores inside the span."""
    spans: list[WordSpan] = []
    start, etype = -1, None

    def close(end: int) -> None:
        if etype is not None:
            score = float(np.mean(word_scores[start:end])) if word_scores is not None else 1.0
            spans.append(WordSpan(start, end, etype, score))

    for i, tag in enumerate(tags):
        prefix, t = split_tag(tag or OUTSIDE)
        if prefix == "B" or (prefix == "I" and t != etype):
            close(i)
            start, etype = i, t
        elif prefix == OUTSIDE:
            close(i)
            start, etype = -1, None
    close(len(tags))
    return spans


def strict_entities(tags: Sequence[str | None]) -> set[tuple[int, int, str]]:
    """The entities of a tag sequence as ``(start, end, type)`` over words, as seqeval's strict IOB2 counts them
    after :func:`sciner.labels.repair_bio`: an unknown (``None``) tag is outside, an ``I-X`` that continues no
    ``X`` starts one. Two sequences agree on an entity when both sets hold its tuple."""
    return {(s.start, s.end, s.label) for s in tags_to_spans(tags)}


def spans_to_entities(text: str, tokens: Sequence[Token], spans: Sequence[WordSpan]) -> list[Entity]:
    """Word spans -> character-offset entities of ``text`` (``text[start:end] == entity.text``)."""
    entities = []
    for span in spans:
        start, end = tokens[span.start].start, tokens[span.end - 1].end
        entities.append(
            Entity(start=start, end=end, text=text[start:end], label=span.label, score=round(span.score, 6))
        )
    return entities
