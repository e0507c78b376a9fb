"""Sentences -> training examples: windows of word pieces with first-piece labels (``-100`` elsewhere
and for words whose label is unknown)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer

from sciner.encoding import make_windows, window_labels, word_pieces
from sciner.labels import IGNORE_INDEX
from sciner.records import Sentence


@dataclass(slots=True)
class Example:
    input_ids: list[int]
    labels: list[int]


def build_examples(
    sentences: list[Sentence],
    tokenizer: Tokenizer,
    label2id: dict[str, int],
    cls_id: int,
    sep_id: int,
    max_tokens: int,
    overlap: int,
    unk_id: int | None = None,
) -> list[Example]:
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences], unk_id)
    word_ids = []
    for s in sentences:
        tags = s.tags or [None] * len(s.tokens)
        word_ids.append([IGNORE_INDEX if t is None else label2id[t] for t in tags])
    examples = []
    for win in make_windows(pieces, cls_id, sep_id, max_tokens, overlap):
        labels = window_labels(win, word_ids[win.sentence])
        if any(lab != IGNORE_INDEX for lab in labels):
            examples.append(Example(win.input_ids, labels))
    return examples
