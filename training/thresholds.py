"""Per-class entity-score thresholds calibrated on gold dev (pure functions, no model).

For each class, the champion's dev entities are sorted by score; the threshold is the lowest score
``t`` such that the entities scoring ``>= t`` reach ``target_precision`` (exact span and type
match). A class with fewer than ``min_entities`` predicted dev entities gets ``default``; a class
whose precision never reaches the target gets :data:`UNREACHABLE` (no entity of it is accepted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from sciner.decoding import WordSpan, strict_entities

UNREACHABLE = 1.01  # above every probability: accept nothing


@dataclass(frozen=True, slots=True)
class ClassThreshold:
    threshold: float
    status: str  # "calibrated" | "default" | "unreachable"
    predicted: int  # predicted dev entities of the class
    precision_at_threshold: float | None  # dev precision of entities scoring >= threshold
    accepted_at_threshold: int  # dev entities scoring >= threshold


def calibrate_class(
    scored: Sequence[tuple[float, bool]], target_precision: float, min_entities: int, default: float
) -> ClassThreshold:
    """``scored``: ``(score, correct)`` of every predicted entity of one class."""
    n = len(scored)
    if n < min_entities:
        return ClassThreshold(default, "default", n, None, 0)
    ordered = sorted(scored, key=lambda x: -x[0])
    best: tuple[float, float, int] | None = None
    correct = 0
    i = 0
    while i < n:
        score = ordered[i][0]
        # all entities tied at this score enter together
        while i < n and ordered[i][0] == score:
            correct += ordered[i][1]
            i += 1
        precision = correct / i
        if precision >= target_precision:
            best = (score, precision, i)  # keep lowering while the target still holds
    if best is None:
        return ClassThreshold(UNREACHABLE, "unreachable", n, None, 0)
    return ClassThreshold(best[0], "calibrated", n, best[1], best[2])


def scored_entities(
    gold: Iterable[Sequence[str | None]], predicted: Iterable[Sequence[WordSpan]]
) -> dict[str, list[tuple[float, bool]]]:
    """Per class, ``(score, exact match with a gold entity)`` of each predicted span."""
    out: dict[str, list[tuple[float, bool]]] = {}
    for gold_tags, spans in zip(gold, predicted, strict=True):
        gold_set = strict_entities(gold_tags)
        for span in spans:
            out.setdefault(span.label, []).append((span.score, (span.start, span.end, span.label) in gold_set))
    return out


def calibrate_thresholds(
    gold: Iterable[Sequence[str | None]],
    predicted: Iterable[Sequence[WordSpan]],
    classes: Iterable[str],
    target_precision: float,
    min_entities: int = 5,
    default: float = 0.9,
) -> dict[str, ClassThreshold]:
    """One :class:`ClassThreshold` per class in ``classes`` (classes never predicted get ``default``)."""
    scored = scored_entities(gold, predicted)
    return {name: calibrate_class(scored.get(name, []), target_precision, min_entities, default) for name in classes}


def thresholds_to_dict(thresholds: dict[str, ClassThreshold]) -> dict[str, dict]:
    return {name: asdict(t) for name, t in thresholds.items()}
