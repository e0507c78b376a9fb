"""Sentences -> training examples: windows of word pieces with first-piece labels (``-100`` elsewhere
and for words whose label is unknown)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from sciner.encoding import make_windows, window_labels, word_pieces
from sciner.labels import IGNORE_INDEX
from sciner.records import Sentence


@dataclass(slots=True)
class Example:
    input_ids: list[int]
    labels: list[int]
    soft: list[tuple[int, np.ndarray]] | None = None  # (piece position, teacher distribution) for distillation

    def has_entity(self, outside_id: int) -> bool:
        """A gold entity label, or (teacher-only windows) a word the teacher calls an entity."""
        if any(lab not in (outside_id, IGNORE_INDEX) for lab in self.labels):
            return True
        return bool(self.soft) and any(int(np.argmax(p)) != outside_id for _, p in self.soft or [])


def build_examples(
    sentences: list[Sentence],
    tokenizer: Tokenizer,
    label2id: dict[str, int],
    cls_id: int,
    sep_id: int,
    max_tokens: int,
    overlap: int,
    unk_id: int | None = None,
    soft_by_id: dict[str, np.ndarray] | None = None,
) -> list[Example]:
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences], unk_id)
    word_ids = []
    for s in sentences:
        tags = s.tags or [None] * len(s.tokens)
        word_ids.append([IGNORE_INDEX if t is None else label2id[t] for t in tags])
    examples = []
    for win in make_windows(pieces, cls_id, sep_id, max_tokens, overlap):
        labels = window_labels(win, word_ids[win.sentence])
        soft = None
        if soft_by_id is not None and sentences[win.sentence].id in soft_by_id:
            probs = soft_by_id[sentences[win.sentence].id]
            last = len(win.input_ids) - 1
            soft = [(pos, probs[win.word_start + k]) for k, pos in enumerate(win.first_piece) if pos < last]
        if any(lab != IGNORE_INDEX for lab in labels) or soft:
            examples.append(Example(win.input_ids, labels, soft))
    return examples
