import itertools

import pytest

from sciner.encoding import (
    case_shape,
    document_chunks,
    document_runs,
    join_runs,
    make_windows,
    owner_window,
    pad_batch,
    split_run,
    token_budget_batches,
    window_labels,
    window_spans,
    word_pieces,
)
from sciner.labels import IGNORE_INDEX, bio_labels, continuation_labels


def test_short_sentence_is_one_window():
    assert window_spans([1, 2, 1], max_pieces=10, overlap=2) == [(0, 3)]


def test_long_sentence_windows_cover_every_word_and_overlap():
    lengths = [1, 2, 3, 1, 1, 2, 2, 1, 3, 1, 1, 1, 2]
    spans = window_spans(lengths, max_pieces=6, overlap=2)
    covered = {w for s, e in spans for w in range(s, e)}
    assert covered == set(range(len(lengths)))
    for (s1, e1), (s2, _) in itertools.pairwise(spans):
        assert s2 > s1 and s2 <= e1  # progress, and contiguous or overlapping
    for s, e in spans:
        assert sum(lengths[s:e]) <= 6 or e - s == 1


def test_a_word_longer_than_a_window_gets_its_own_window():
    assert window_spans([1, 50, 1], max_pieces=8, overlap=2) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("n_words", [1, 7, 40, 133])
def test_each_word_owned_by_the_window_where_it_is_most_central(n_words):
    from sciner.encoding import Window

    spans = window_spans([1] * n_words, max_pieces=10, overlap=4)
    wins = [Window(0, s, e, [], []) for s, e in spans]
    owners = owner_window(wins, n_words)
    assert all(o >= 0 for o in owners)
    for w, o in enumerate(owners):
        s, e = spans[o]
        assert s <= w < e
        margin = min(w - s, e - 1 - w)
        assert all(margin >= min(w - s2, e2 - 1 - w) for s2, e2 in spans if s2 <= w < e2)


class FakeEncoding:
    def __init__(self, ids, word_ids):
        self.ids, self.word_ids = ids, word_ids


class FakeTokenizer:
    """Splits each word into one piece per 3 characters."""

    def encode_batch(self, sentences, is_pretokenized, add_special_tokens):
        out = []
        for words in sentences:
            ids, wids = [], []
            for i, w in enumerate(words):
                n = max(1, -(-len(w) // 3))
                ids += [100 + i] * n
                wids += [i] * n
            out.append(FakeEncoding(ids, wids))
        return out


def test_first_piece_carries_the_label_and_other_pieces_are_ignored():
    pieces = word_pieces(FakeTokenizer(), [["ab", "abcdefg", "x"]])
    assert pieces[0].word_starts == [0, 1, 4] and pieces[0].word_lengths == [1, 3, 1]
    (win,) = make_windows(pieces, cls_id=1, sep_id=2, window_tokens=16, overlap=2)
    assert win.input_ids[0] == 1 and win.input_ids[-1] == 2
    assert win.first_piece == [1, 2, 5]
    labels = window_labels(win, [3, 4, IGNORE_INDEX])
    assert labels == [IGNORE_INDEX, 3, 4, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]


def test_a_words_later_pieces_take_the_continuation_of_its_label_when_every_piece_is_labelled():
    labels = bio_labels(["MethodName", "TaskName"])  # O, B-Method, I-Method, B-Task, I-Task
    assert continuation_labels(labels) == [0, 2, 2, 4, 4]
    pieces = word_pieces(FakeTokenizer(), [["ab", "abcdefg", "abcd", "x", "abcdefg"]])
    (win,) = make_windows(pieces, cls_id=1, sep_id=2, window_tokens=16, overlap=2)
    assert win.first_piece == [1, 2, 5, 7, 8]
    # B-Method, I-Method (3 pieces), O (2 pieces), unknown, B-Task (3 pieces); [CLS] and [SEP] unlabelled
    got = window_labels(win, [1, 2, 0, IGNORE_INDEX, 3], continuation_labels(labels))
    assert got == [IGNORE_INDEX, 1, 2, 2, 2, 0, 0, IGNORE_INDEX, 3, 4, 4, IGNORE_INDEX]
    assert window_labels(win, [1, 2, 0, IGNORE_INDEX, 3]) == [
        IGNORE_INDEX, 1, 2, IGNORE_INDEX, IGNORE_INDEX, 0, IGNORE_INDEX, IGNORE_INDEX, 3,
        IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX,
    ]  # fmt: skip


def test_a_word_cut_short_by_its_window_labels_only_the_pieces_the_window_holds():
    pieces = word_pieces(FakeTokenizer(), [["abcdefghijklmnop"]])  # one word of 6 pieces
    (win,) = make_windows(pieces, cls_id=1, sep_id=2, window_tokens=5, overlap=0)
    assert len(win.input_ids) == 5
    assert window_labels(win, [3], [0, 2, 2, 4, 4]) == [IGNORE_INDEX, 3, 4, 4, IGNORE_INDEX]


def test_token_budget_bounds_each_batch_and_sorts_by_length():
    lengths = [5, 100, 7, 3, 90, 6, 8, 120]
    batches = token_budget_batches(lengths, token_budget=200, max_count=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) * max(lengths[i] for i in b) <= 200 or len(b) == 1
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_pad_batch_right_pads_with_mask():
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_consecutive_sentences_of_a_document_form_one_run_and_unkeyed_ones_stand_alone():
    assert document_runs(["a", "a", "b", None, None, "a", "a"]) == [
        range(0, 2),
        range(2, 3),
        range(3, 4),
        range(4, 5),
        range(5, 7),
    ]
    assert document_runs([]) == []


def test_joined_runs_split_back_into_their_sentences():
    sentences = [["We", "use", "BERT", "."], ["It", "works", "."], ["Other", "doc"]]
    runs = document_runs(["d", "d", "e"])
    joined = join_runs(sentences, runs)
    assert joined == [["We", "use", "BERT", ".", "It", "works", "."], ["Other", "doc"]]
    assert split_run(joined[0], [4, 3]) == sentences[:2]
    with pytest.raises(ValueError):
        split_run(joined[0], [4, 4])


def test_chunks_end_at_document_boundaries_and_a_long_document_is_a_chunk_of_its_own():
    keys = ["a"] * 3 + ["b"] * 2 + ["c"] * 6 + ["d"]
    assert document_chunks(keys, 5) == [range(0, 5), range(5, 11), range(11, 12)]
    assert document_chunks([None] * 5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert document_chunks([], 4) == []


@pytest.mark.parametrize(
    ("word", "shape"),
    [
        ("BERT", 0),
        ("F1", 0),
        ("A", 0),
        ("Transformer", 1),
        ("SQuAD", 2),
        ("RoBERTa", 2),
        ("iPhone", 2),
        ("the", None),
        ("3e-5", None),
        (".", None),
    ],
)
def test_case_shape_names_what_lowercasing_loses(word, shape):
    assert case_shape(word) == shape


def test_case_markers_follow_a_capitalised_words_pieces_and_its_label_stays_on_its_first_piece():
    words = ["We", "use", "abcdefg", "SQuAD"]
    plain = word_pieces(FakeTokenizer(), [words])[0]
    (marked,) = word_pieces(FakeTokenizer(), [words], case_markers=[7, 8, 9])
    assert plain.word_lengths == [1, 1, 3, 2]
    assert marked.ids == [100, 8, 101, 102, 102, 102, 103, 103, 9]
    assert marked.word_starts == [0, 2, 3, 6] and marked.word_lengths == [2, 1, 3, 3]
    (win,) = make_windows([marked], cls_id=1, sep_id=2, window_tokens=32, overlap=0)
    assert [win.input_ids[p] for p in win.first_piece] == [100, 101, 102, 103]


def test_a_tokenizer_copy_is_independent_and_cuts_nothing():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from sciner.encoding import tokenizer_copy

    original = Tokenizer(WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    original.pre_tokenizer = Whitespace()
    original.enable_truncation(max_length=2)
    original.enable_padding(length=8)
    copy = tokenizer_copy(original)
    assert copy.encode("a b a b").ids == [1, 2, 1, 2], "no truncation, no padding"
    assert original.truncation is not None and original.padding is not None, "the original keeps its limits"
