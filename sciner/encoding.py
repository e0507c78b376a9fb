"""Word tokens -> word pieces, sliding windows and model inputs. Shared by training and inference.

Each word's label lives on its first word piece; the other pieces are ignored (``-100`` in
training, skipped at inference). Sentences longer than a window are covered by overlapping
windows cut at word boundaries; each word takes its prediction from the window in which it is
most central, so nothing is ever truncated away. A model trained with document context reads a
document's consecutive sentences as one word sequence (:func:`document_runs`), so its windows cross
sentence boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from tokenizers import Tokenizer

from sciner.labels import IGNORE_INDEX

T = TypeVar("T")


@dataclass(slots=True)
class WordPieces:
    """Word pieces of one sentence: ``ids`` flat, ``word_starts[i]`` = index of word i's first piece."""

    ids: list[int]
    word_starts: list[int]
    word_lengths: list[int]


@dataclass(slots=True)
class Window:
    """A slice of one sentence's words ``[word_start, word_end)`` fed to the model as one sequence."""

    sentence: int
    word_start: int
    word_end: int
    input_ids: list[int]  # with special tokens
    first_piece: list[int]  # position in input_ids of the first piece of each word in the window


def load_tokenizer(path: str) -> Tokenizer:
    return _unlimited(Tokenizer.from_file(path))


def tokenizer_copy(tokenizer: Tokenizer) -> Tokenizer:
    """An independent copy of a (e.g. a Hugging Face fast tokenizer's backend) tokenizer, read the way
    :func:`load_tokenizer` reads a file: no truncation, no padding (windows are cut by sciner itself)."""
    return _unlimited(Tokenizer.from_str(tokenizer.to_str()))


def _unlimited(tok: Tokenizer) -> Tokenizer:
    tok.no_truncation()
    tok.no_padding()
    return tok


def case_shape(word: str) -> int | None:
    """What an uncased tokenizer loses of a word: ``None`` without a capital letter, else 0 for all
    capitals (``BERT``, ``F1``), 1 for a capital initial (``Transformer``), 2 for mixed (``SQuAD``). Pure."""
    letters = [c for c in word if c.isalpha()]
    if not any(c.isupper() for c in letters):
        return None
    if all(c.isupper() for c in letters):
        return 0
    if letters[0].isupper() and not any(c.isupper() for c in letters[1:]):
        return 1
    return 2


def word_pieces(
    tokenizer: Tokenizer,
    sentences: list[list[str]],
    unk_id: int | None = None,
    case_markers: Sequence[int] | None = None,
) -> list[WordPieces]:
    """Tokenize pre-split sentences in one Rust batch call. With ``case_markers`` (three token ids, for the
    shapes of :func:`case_shape`), a word with a capital letter gets its shape's marker after its own
    pieces: an uncased encoder then still sees the capitals that mark most entity names. The word's
    label stays on its first piece."""
    encodings = tokenizer.encode_batch(sentences, is_pretokenized=True, add_special_tokens=False)
    out: list[WordPieces] = []
    for words, enc in zip(sentences, encodings, strict=True):
        ids = list(enc.ids)
        counts = [0] * len(words)
        for wid in enc.word_ids:
            if wid is not None:
                counts[wid] += 1
        starts: list[int] = []
        pos = 0
        for i, n in enumerate(counts):
            if n == 0:  # a word the tokenizer dropped entirely (e.g. a control char): give it [UNK]
                ids.insert(pos, unk_id if unk_id is not None else 0)
                counts[i] = n = 1
            starts.append(pos)
            pos += n
        if case_markers:
            ids, starts, counts = _with_case_markers(words, ids, starts, counts, case_markers)
        out.append(WordPieces(ids=ids, word_starts=starts, word_lengths=counts))
    return out


def _with_case_markers(
    words: list[str], ids: list[int], starts: list[int], counts: list[int], markers: Sequence[int]
) -> tuple[list[int], list[int], list[int]]:
    marked: list[int] = []
    new_starts: list[int] = []
    new_counts: list[int] = []
    for word, start, n in zip(words, starts, counts, strict=True):
        new_starts.append(len(marked))
        marked += ids[start : start + n]
        shape = case_shape(word)
        if shape is not None:
            marked.append(markers[shape])
            n += 1
        new_counts.append(n)
    return marked, new_starts, new_counts


def window_spans(word_lengths: list[int], max_pieces: int, overlap: int) -> list[tuple[int, int]]:
    """Cut words into windows of at most ``max_pieces`` pieces, neighbours overlapping by about
    ``overlap`` pieces. A single word longer than a window gets a window of its own (its extra
    pieces are dropped; its label is on its first piece)."""
    n = len(word_lengths)
    if n == 0:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, total = start, 0
        while end < n and total + word_lengths[end] <= max_pieces:
            total += word_lengths[end]
            end += 1
        if end == start:
            end = start + 1
        spans.append((start, end))
        if end >= n:
            return spans
        nxt, shared = end, 0
        while nxt - 1 > start and shared + word_lengths[nxt - 1] <= overlap:
            nxt -= 1
            shared += word_lengths[nxt]
        start = nxt


def make_windows(pieces: list[WordPieces], cls_id: int, sep_id: int, window_tokens: int, overlap: int) -> list[Window]:
    """Model input windows (``[CLS] ... [SEP]``) for every sentence."""
    max_pieces = window_tokens - 2
    windows: list[Window] = []
    for s, wp in enumerate(pieces):
        for ws, we in window_spans(wp.word_lengths, max_pieces, overlap):
            lo = wp.word_starts[ws]
            hi = wp.word_starts[we - 1] + wp.word_lengths[we - 1]
            body = wp.ids[lo:hi][:max_pieces]
            first = [1 + wp.word_starts[w] - lo for w in range(ws, we)]
            windows.append(Window(s, ws, we, [cls_id, *body, sep_id], first))
    return windows


def owner_window(windows: list[Window], n_words: int) -> list[int]:
    """For each word of a sentence, the index (into ``windows``) of the window where it is most central."""
    best = [-1] * n_words
    best_margin = [-1] * n_words
    for k, win in enumerate(windows):
        for w in range(win.word_start, win.word_end):
            margin = min(w - win.word_start, win.word_end - 1 - w)
            if margin > best_margin[w]:
                best[w], best_margin[w] = k, margin
    return best


def token_budget_batches(lengths: list[int], token_budget: int, max_count: int) -> list[list[int]]:
    """Group sequence indices into batches, shortest first, so each batch's padded size
    (count x longest) stays within ``token_budget`` and ``max_count``."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for idx in order:
        size = lengths[idx]
        if current and ((len(current) + 1) * max(longest, size) > token_budget or len(current) >= max_count):
            batches.append(current)
            current, longest = [], 0
        current.append(idx)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest sequence: (input_ids, attention_mask) as int64 arrays."""
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
    return ids, mask


def window_labels(window: Window, word_label_ids: list[int], continuation: Sequence[int] | None = None) -> list[int]:
    """Training labels for one window: the word's label on its first piece, ``-100`` elsewhere. With
    ``continuation`` (:func:`sciner.labels.continuation_labels`) a word's later pieces (its capital marker
    included) are labelled too, with the continuation of its label; a word of unknown label stays ``-100``."""
    labels = [IGNORE_INDEX] * len(window.input_ids)
    last = len(labels) - 1  # the closing special token
    ends = [*window.first_piece[1:], last]
    for offset, (pos, end) in enumerate(zip(window.first_piece, ends, strict=True)):
        if pos >= last:
            continue
        label = word_label_ids[window.word_start + offset]
        labels[pos] = label
        if continuation is not None and label != IGNORE_INDEX:
            stop = min(end, last)
            labels[pos + 1 : stop] = [continuation[label]] * (stop - pos - 1)
    return labels


def document_runs(documents: Sequence[str | None]) -> list[range]:
    """Index ranges of consecutive sentences that belong to one document (``None``: a sentence on its own).

    A model trained with document context reads each run as one word sequence, so its windows cross
    sentence boundaries and every word sees its neighbouring sentences."""
    runs: list[range] = []
    start = 0
    for i in range(1, len(documents) + 1):
        if i == len(documents) or documents[i] is None or documents[i] != documents[start]:
            runs.append(range(start, i))
            start = i
    return runs if documents else []


def join_runs(sentences: Sequence[Sequence[T]], runs: Sequence[range]) -> list[list[T]]:
    """Each run's sentences concatenated into one sequence (words, labels, ...)."""
    return [[item for i in run for item in sentences[i]] for run in runs]


def split_run(joined: Sequence[T], lengths: Sequence[int]) -> list[Sequence[T]]:
    """Undo :func:`join_runs` for one run: cut ``joined`` back into pieces of ``lengths``."""
    if sum(lengths) != len(joined):
        raise ValueError(f"{len(joined)} items do not split into sentences of {sum(lengths)}")
    bounds = np.cumsum([0, *lengths])
    return [joined[bounds[k] : bounds[k + 1]] for k in range(len(lengths))]


def document_chunks(documents: Sequence[str | None], size: int) -> list[range]:
    """Consecutive index ranges of about ``size`` sentences that never cut a document in two (a
    document longer than ``size`` is a chunk of its own), for work done a chunk at a time."""
    chunks: list[range] = []
    start = end = 0
    for run in document_runs(documents):
        if end > start and end - start + len(run) > size:
            chunks.append(range(start, end))
            start = end
        end = run.stop
    if end > start:
        chunks.append(range(start, end))
    return chunks
