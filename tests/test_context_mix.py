"""Training on documents read whole and sentence by sentence in one run (``SCINER_DOCUMENT_CONTEXT_SHARE``)."""

from __future__ import annotations

import random
from functools import partial

import pytest

from sciner.encoding import load_tokenizer
from sciner.model_dir import read_metadata
from sciner.records import Sentence
from training.batching import bucketed_batches
from training.context_mix import (
    documents_read_whole,
    epoch_batches,
    mixed_examples,
    steps_per_epoch,
    whole_batch_size,
)
from training.features import Example, build_examples


def _sentence(sid: str, doc: str, text: str) -> Sentence:
    words = text.split()
    return Sentence(sid, words, ["B-MethodName", *["O"] * (len(words) - 1)], doc)


SENTENCES = [
    _sentence("a#0", "a", "BERT works well ."),
    _sentence("b#0", "b", "ELMo reads both ways ."),
    _sentence("a#1", "a", "CRF decodes tags ."),
    _sentence("b#1", "b", "GloVe embeds words ."),
    _sentence("x", "", "LSTM helps ."),
]


def test_a_share_of_the_documents_is_drawn_and_a_sentence_without_one_never_is():
    drawn = [documents_read_whole(SENTENCES, 0.5, random.Random(seed)) for seed in range(20)]

    assert all(len(d) == 1 and d <= {"a", "b"} for d in drawn)
    assert {"a"} in drawn and {"b"} in drawn, "drawn afresh, not always the same document"
    assert documents_read_whole(SENTENCES, 1.0, random.Random(0)) == {"a", "b"}


@pytest.fixture(scope="module")
def build(tiny_model_dir):
    meta = read_metadata(tiny_model_dir)
    tok = load_tokenizer(str(tiny_model_dir / "tokenizer.json"))
    label2id = {lab: i for i, lab in enumerate(meta.labels)}
    return partial(
        build_examples,
        tokenizer=tok,
        label2id=label2id,
        cls_id=meta.cls_id,
        sep_id=meta.sep_id,
        max_tokens=128,
        overlap=32,
        unk_id=meta.unk_id,
    )


def test_a_drawn_document_is_one_window_across_its_sentences_and_the_rest_are_read_alone(build):
    examples = mixed_examples(build, SENTENCES, teams=[1, 2, 1, 2, 3], whole={"a"})

    alone = build(SENTENCES)
    assert len(examples) == 4, "document a in one window, then b#0, b#1 and x on their own"
    assert [e.whole for e in examples] == [True, False, False, False]
    assert examples[0].input_ids == [*alone[0].input_ids[:-1], *alone[2].input_ids[1:]]
    assert [e.input_ids for e in examples[1:]] == [alone[i].input_ids for i in (1, 3, 4)]
    assert [e.team for e in examples] == [1, 2, 2, 3], "each window keeps its sentence's team"


def test_with_one_reading_the_batches_are_exactly_the_plain_bucketed_ones():
    lengths = [random.Random(k).randint(5, 60) for k in range(200)]

    for whole in (False, True):
        got = epoch_batches(lengths, [whole] * 200, 16, random.Random(7))
        assert got == bucketed_batches(lengths, 16, random.Random(7))


def test_with_both_readings_a_batch_holds_one_kind_and_whole_documents_come_in_smaller_batches():
    lengths = [30] * 64 + [120] * 16
    whole = [False] * 64 + [True] * 16

    batches = epoch_batches(lengths, whole, 16, random.Random(3))

    assert sorted(i for b in batches for i in b) == list(range(80)), "every example once"
    kinds = [{whole[i] for i in b} for b in batches]
    assert all(len(k) == 1 for k in kinds)
    assert sorted(len(b) for b in batches) == [4, 4, 4, 4, 16, 16, 16, 16], "16 x 30 / 120 = 4 windows a batch"
    assert kinds[:4] != [{False}] * 4, "the two kinds are shuffled together"


def test_a_batch_of_whole_documents_holds_about_as_many_pieces_as_a_batch_of_sentences():
    assert whole_batch_size(16, [30, 40, 50], [120, 130, 110]) == 5  # 16 * 40 / 120 = 5.3
    assert whole_batch_size(16, [30], [1000]) == 1, "never empty"


def _examples(whole: list[bool]) -> list[Example]:
    return [Example([0] * (120 if w else 30), [1], whole=w) for w in whole]


def test_the_schedule_counts_each_kind_of_batch():
    examples = _examples([False] * 64 + [True] * 16)
    with_entity, entity_free = list(range(48)) + list(range(64, 76)), list(range(48, 64)) + list(range(76, 80))

    # all entity-free examples drawn: exactly the batches an epoch takes
    assert (
        steps_per_epoch(examples, with_entity, entity_free, 20, 16)
        == 8
        == len(epoch_batches([len(e.input_ids) for e in examples], [e.whole for e in examples], 16, random.Random(0)))
    )
    # half of them drawn, in proportion: 48 + 8 sentences (4 batches), 12 + 2 windows (4 batches of 4)
    assert steps_per_epoch(examples, with_entity, entity_free, 10, 16) == 8
    # one reading: the plain count
    assert steps_per_epoch(_examples([False] * 80), with_entity, entity_free, 10, 16) == 5


@pytest.mark.slow
def test_a_model_trained_on_both_readings_records_its_share_and_reads_documents(tmp_path, seed_train):
    from sciner.settings import Settings
    from training.trainer import train_model

    settings = Settings(
        home=tmp_path, epochs=1, batch_size=8, document_context=True, document_context_share=0.5, intra_op_threads=1
    )
    out = train_model(seed_train, None, tmp_path / "model", settings, progress=False).model_dir

    meta = read_metadata(out)
    assert meta.reads_documents
    assert meta.training["document_context_share"] == 0.5
    n_docs = len({s.doc_id for s in seed_train})
    windows = meta.training["train_windows"]
    assert n_docs < windows < len(seed_train), "some documents read whole, the rest sentence by sentence"
