"""Sentences -> training examples: windows of word pieces with first-piece labels (``-100`` elsewhere, or
every piece labelled with ``SCINER_LABEL_ALL_PIECES``; ``-100`` for words whose label is unknown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from sciner.encoding import document_runs, join_runs, make_windows, window_labels, word_pieces
from sciner.labels import IGNORE_INDEX
from sciner.records import Sentence, documents_of
from training.crowd_layer import NO_TEAM


@dataclass(slots=True)
class Example:
    input_ids: list[int]
    labels: list[int]
    soft: list[tuple[int, np.ndarray]] | None = None  # (piece position, teacher distribution) for distillation
    team: int = NO_TEAM  # the team that labelled it (training/crowd_layer.py)
    whole: bool = False  # a window of a document read whole (document context), not of one sentence

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
    document_context: bool = False,
    case_markers: list[int] | None = None,
    teams: list[int] | None = None,
    continuation: Sequence[int] | None = None,
) -> list[Example]:
    """Windows with first-piece labels (and teacher distributions where ``soft_by_id`` has the sentence).

    With ``document_context`` each run of consecutive sentences of one document is one word sequence
    cut into windows, as the predictor reads it for such a model; the windows then do not overlap
    (every word is labelled once; the predictor's overlap only picks each word's most central window).
    ``case_markers`` are the model's capital markers (:func:`sciner.encoding.word_pieces`), as the predictor
    adds them. ``teams`` (one per sentence, :func:`training.crowd_layer.team_ids`) tags each window
    with its sentence's team; a document's windows take the team of its first sentence. ``continuation``
    (:func:`sciner.labels.continuation_labels`) labels every piece of a word, not only its first."""
    words = [s.tokens for s in sentences]
    word_ids: list[list[int]] = []
    for s in sentences:
        tags = s.tags or [None] * len(s.tokens)
        word_ids.append([IGNORE_INDEX if t is None else label2id[t] for t in tags])
    soft: list[list[np.ndarray | None]] = [
        list(soft_by_id[s.id]) if soft_by_id is not None and s.id in soft_by_id else [None] * len(s.tokens)
        for s in sentences
    ]
    teams = list(teams) if teams is not None else [NO_TEAM] * len(sentences)
    if document_context:
        runs = document_runs(documents_of(sentences))
        words, word_ids, soft = join_runs(words, runs), join_runs(word_ids, runs), join_runs(soft, runs)
        teams = [teams[run[0]] for run in runs]
        overlap = 0
    pieces = word_pieces(tokenizer, words, unk_id, case_markers)
    examples = []
    for win in make_windows(pieces, cls_id, sep_id, max_tokens, overlap):
        labels = window_labels(win, word_ids[win.sentence], continuation)
        last = len(win.input_ids) - 1
        probs = soft[win.sentence][win.word_start : win.word_end]
        window_soft = [(pos, p) for pos, p in zip(win.first_piece, probs, strict=True) if pos < last and p is not None]
        if any(lab != IGNORE_INDEX for lab in labels) or window_soft:
            examples.append(Example(win.input_ids, labels, window_soft or None, teams[win.sentence], document_context))
    return examples
