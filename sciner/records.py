"""Plain records shared by I/O, training, prediction and serving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field


@dataclass(slots=True)
class Sentence:
    """One tokenized sentence in the shared JSONL schema (``tags`` may be ``None`` when unlabeled).

    A tag may be ``None`` inside ``tags`` for a token whose label is unknown (partially
    annotated, auto-annotated sentences): training masks it with ``-100``.
    """

    id: str
    tokens: list[str]
    tags: list[str | None] | None = None
    doc_id: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict)


class Entity(BaseModel):
    """An entity found in a text, in character offsets of that text: ``text[start:end] == self.text``."""

    start: int = Field(ge=0, description="Offset of the first character.")
    end: int = Field(gt=0, description="Offset one past the last character.")
    text: str
    label: str
    score: float = Field(
        ge=0.0,
        le=1.0,
        description="Mean probability of the entity's tags; for a mention labelled because the model labelled the "
        "same name at other mentions of the text (name propagation), the best score of those mentions.",
    )


@dataclass(slots=True)
class Token:
    """A word token of raw text with its character offsets."""

    text: str
    start: int
    end: int


def documents_of(sentences: Sequence[Sentence]) -> list[str | None]:
    """Each sentence's document key for :meth:`sciner.predictor.Predictor.predict_sentences`
    (``None`` for a sentence without a document: it is read on its own)."""
    return [s.doc_id or None for s in sentences]
