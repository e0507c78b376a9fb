"""Cutting long requests into bounded pieces for the long lane, and putting the answers back
together (pure functions).

A long text is cut only where a sentence starts (the predictor's own sentence splitter), so each
piece holds whole sentences and the predictor — which handles every sentence on its own — finds
the same entities in the pieces as in the whole text; their offsets are shifted back. A single
sentence longer than the piece size stays one piece. Pieces, from all texts of a request, are
packed into chunks of at most ``piece_chars`` characters: one predictor call each.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciner.pretokenize import split_sentences
from sciner.records import Entity


@dataclass(frozen=True, slots=True)
class Piece:
    text_index: int
    start: int  # character offsets of the piece in its text
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(slots=True)
class Assembled:
    entities: list[Entity]
    windows: int = 0
    error: bool = False


def sentence_starts(text: str) -> list[int]:
    """Offsets where the predictor's sentences begin (the first is moved to 0)."""
    starts = [sentence[0].start for sentence in split_sentences(text) if sentence]
    if not starts:
        return [0]
    starts[0] = 0
    return starts


def cut_text(text: str, piece_chars: int, starts: list[int] | None = None) -> list[tuple[int, int]]:
    """Spans covering ``text``, each ending where a sentence starts and at most ``piece_chars``
    long unless it is a single sentence that is longer."""
    if len(text) <= piece_chars:
        return [(0, len(text))]
    starts = sentence_starts(text) if starts is None else starts
    bounds = [*starts[1:], len(text)]
    spans: list[tuple[int, int]] = []
    begin = 0
    last = 0  # end of the last sentence that still fits
    for bound in bounds:
        if bound - begin > piece_chars and last > begin:
            spans.append((begin, last))
            begin = last
        last = bound
    spans.append((begin, len(text)))
    return spans


def plan_chunks(texts: list[str], piece_chars: int) -> list[list[Piece]]:
    """All texts cut into pieces, packed in order into chunks of at most ``piece_chars``."""
    chunks: list[list[Piece]] = []
    current: list[Piece] = []
    size = 0
    for i, text in enumerate(texts):
        for start, end in cut_text(text, piece_chars):
            piece = Piece(i, start, end)
            if current and size + piece.size > piece_chars:
                chunks.append(current)
                current, size = [], 0
            current.append(piece)
            size += piece.size
    if current:
        chunks.append(current)
    return chunks


def shift(entities: list[Entity], offset: int) -> list[Entity]:
    if not offset:
        return list(entities)
    return [e.model_copy(update={"start": e.start + offset, "end": e.end + offset}) for e in entities]


def assemble(n_texts: int, done: list[tuple[Piece, list[Entity] | None, int]]) -> list[Assembled]:
    """Per text: entities of its pieces in text offsets (in order), windows summed; a failed
    piece (entities None) marks its text failed."""
    out = [Assembled(entities=[]) for _ in range(n_texts)]
    for piece, entities, windows in sorted(done, key=lambda d: (d[0].text_index, d[0].start)):
        target = out[piece.text_index]
        if entities is None:
            target.error = True
            continue
        target.entities.extend(shift(entities, piece.start))
        target.windows += windows
    return out
