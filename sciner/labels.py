"""The label schema: entity types of the ACL SciNER scheme and the BIO label map."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ENTITY_TYPES: tuple[str, ...] = (
    "MethodName",
    "HyperparameterName",
    "HyperparameterValue",
    "MetricName",
    "MetricValue",
    "TaskName",
    "DatasetName",
)
OUTSIDE = "O"
IGNORE_INDEX = -100  # label id for word pieces / words that carry no training signal


def bio_labels(entity_types: Iterable[str]) -> list[str]:
    """``O`` first, then ``B-``/``I-`` per type in a stable order."""
    labels = [OUTSIDE]
    for etype in entity_types:
        labels += [f"B-{etype}", f"I-{etype}"]
    return labels


def continuation_labels(labels: Sequence[str]) -> list[int]:
    """For each label id, the id a word's later pieces take when every piece is labelled: ``I-X`` for ``B-X``
    and ``I-X`` (the pieces continue the word's entity), ``O`` for ``O``. Pure."""
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for label in labels:
        prefix, etype = split_tag(label)
        out.append(index[label] if prefix == OUTSIDE else index[f"I-{etype}"])
    return out


def entity_types_in(tag_sequences: Iterable[Sequence[str]]) -> list[str]:
    """Entity types used by the data, known SciNER types first, then others alphabetically."""
    seen = {tag[2:] for tags in tag_sequences for tag in tags if tag != OUTSIDE}
    known = [t for t in ENTITY_TYPES if t in seen]
    return known + sorted(seen - set(known))


def labels_of(tag_sequences: Iterable[Sequence[str | None] | None]) -> list[str]:
    """The BIO label list a model trained on these tags gets (masked ``None`` tags and untagged sentences
    carry no type): what the trainer uses unless told otherwise, and what a teacher must label with."""
    return bio_labels(entity_types_in([[t for t in tags or [] if t] for tags in tag_sequences]))


def label_words(tags: list[str] | list[str | None], start: int, end: int, label: str) -> None:
    """Tag words ``[start, end)`` as one ``label`` entity (IOB2), in place."""
    tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-TaskName"`` -> ``("B", "TaskName")``; ``"O"`` -> ``("O", None)``."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, _, etype = tag.partition("-")
    return prefix, etype


def is_valid_tag(tag: str) -> bool:
    prefix, etype = split_tag(tag)
    return prefix == OUTSIDE or (prefix in ("B", "I") and bool(etype))


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Strict IOB2: an ``I-X`` that does not continue an ``X`` entity starts one."""
    fixed: list[str] = []
    prev = OUTSIDE
    for tag in tags:
        prefix, etype = split_tag(tag)
        if prefix == "I" and split_tag(prev)[1] != etype:
            tag = f"B-{etype}"
        fixed.append(tag)
        prev = tag
    return fixed
