"""Document context: a model trained on a document's sentences read together is read the same way by
training, evaluation, calibration, auto-annotation and the service (one shared predictor path)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sciner.encoding import load_tokenizer
from sciner.labels import IGNORE_INDEX
from sciner.model_dir import read_metadata
from sciner.predictor import Predictor
from sciner.pretokenize import split_sentences
from sciner.records import Sentence, documents_of
from training.evaluate import predict_tags
from training.features import build_examples

TEXT = "We fine-tune BERT with a learning rate of 3e-5 . It reaches 88.5 F1 on SQuAD ."


@pytest.fixture(scope="module")
def sentence_reader(tiny_model_dir, tiny_settings) -> Predictor:
    return Predictor.from_model_dir(tiny_model_dir, tiny_settings)


@pytest.fixture(scope="module")
def document_reader(sentence_reader, tiny_settings) -> Predictor:
    """The same weights, declared as trained with document context (what ``sciner.json`` records)."""
    p = sentence_reader
    return Predictor(p.backend, p.tokenizer, dataclasses.replace(p.meta, context="document"), tiny_settings)


def _sentences(doc: str, *texts: str) -> list[Sentence]:
    return [Sentence(f"{doc}#s{k}", t.split(), None, doc) for k, t in enumerate(texts)]


def test_a_document_model_reads_a_documents_consecutive_sentences_as_one_sequence(document_reader):
    sents = _sentences("d", "We use BERT .", "It reaches 88.5 F1 on SQuAD .") + _sentences("e", "CRF helps .")
    words = [s.tokens for s in sents]
    got = document_reader.record_logits(sents)
    joined = document_reader.word_logits([words[0] + words[1], words[2]])  # no keys: each list read alone
    assert np.allclose(np.concatenate([got[0].logits, got[1].logits]), joined[0].logits)
    assert np.allclose(got[2].logits, joined[1].logits)
    assert [g.windows for g in got] == [1, 0, 1], "a run's windows are counted once, on its first sentence"
    alone = document_reader.word_logits(words)
    assert not np.allclose(got[1].logits, alone[1].logits), "the second sentence now sees the first"


def test_a_sentence_model_ignores_document_keys(sentence_reader):
    sents = _sentences("d", "We use BERT .", "It reaches 88.5 F1 .")
    words = [s.tokens for s in sents]
    with_keys = sentence_reader.word_logits(words, documents_of(sents))
    without = sentence_reader.word_logits(words)
    assert all(np.array_equal(a.logits, b.logits) for a, b in zip(with_keys, without, strict=True))
    assert [w.windows for w in with_keys] == [1, 1]


def test_records_are_read_with_their_own_document_keys(document_reader):
    sents = [*_sentences("d", "We use BERT .", "It reaches 88.5 F1 ."), Sentence("x", ["CRF", "."], None, "")]
    by_records = document_reader.predict_records(sents)
    by_keys = document_reader.predict_sentences([s.tokens for s in sents], ["d", "d", None])
    assert [p.tags for p in by_records] == [p.tags for p in by_keys]
    assert all(np.array_equal(a.probs, b.probs) for a, b in zip(by_records, by_keys, strict=True))
    assert [p.windows for p in by_records] == [1, 0, 1], "the sentence without a document is read alone"


def test_one_key_per_sentence_is_required(document_reader):
    with pytest.raises(ValueError, match="2 document keys for 1 sentences"):
        document_reader.word_logits([["BERT"]], ["d", "d"])


def test_the_service_and_evaluation_read_a_document_the_same_way(document_reader):
    """``predict_texts`` (the service) reads a whole text as one document; evaluation reads gold
    sentences by their ``doc_id``: same words in, same tags out."""
    split = split_sentences(TEXT)
    gold = [Sentence(f"d#s{k}", [t.text for t in sent], None, "d") for k, sent in enumerate(split)]
    tags = predict_tags(document_reader, gold)
    (served,) = document_reader.predict_texts([TEXT])
    assert served.sentences == len(gold) == 2 and served.windows == 1
    from_eval = [
        (w, t[2:]) for s, ts in zip(gold, tags, strict=True) for w, t in zip(s.tokens, ts, strict=True) if t != "O"
    ]
    from_service = [(w, e.label) for e in served.entities for w in e.text.split()]
    assert from_service == from_eval


def test_training_windows_cross_sentence_boundaries_and_keep_each_words_teacher_row(tiny_model_dir):
    meta = read_metadata(tiny_model_dir)
    tok = load_tokenizer(str(tiny_model_dir / "tokenizer.json"))
    label2id = {lab: i for i, lab in enumerate(meta.labels)}
    sents = [
        Sentence("d#s0", ["BERT", "works", "."], ["B-MethodName", "O", "O"], "d"),
        Sentence("d#s1", ["On", "SQuAD", "."], ["O", "B-DatasetName", None], "d"),
    ]
    teacher = {s.id: np.full((len(s.tokens), len(meta.labels)), k, dtype=np.float32) for k, s in enumerate(sents)}
    args = (tok, label2id, meta.cls_id, meta.sep_id, 128, 32, meta.unk_id)
    apart = build_examples(sents, *args, soft_by_id=teacher)
    (together,) = build_examples(sents, *args, soft_by_id=teacher, document_context=True)
    assert len(apart) == 2
    assert together.input_ids == [meta.cls_id, *apart[0].input_ids[1:-1], *apart[1].input_ids[1:-1], meta.sep_id]
    labelled = [lab for lab in together.labels if lab != IGNORE_INDEX]
    assert labelled == [label2id[t] for t in ["B-MethodName", "O", "O", "O", "B-DatasetName"]]
    assert [float(p[0]) for _, p in together.soft or []] == [0, 0, 0, 1, 1, 1], "each word keeps its own row"


def test_the_paired_benchmark_counts_what_seqeval_scores(sentence_reader, document_reader, seed_dev):
    from bench.paired import read_counts
    from sciner.metrics import evaluate_tags
    from training.promotion import micro_f1

    for reader, context in ((sentence_reader, "sentence"), (document_reader, "document")):
        logits = reader.record_logits(seed_dev)
        decoded = [p.tags for p in reader.decode_records(logits, seed_dev, 0.0)]
        expected = evaluate_tags([s.tags for s in seed_dev], decoded).micro_f1
        counts = read_counts(reader, seed_dev, context)
        assert len(counts) == len({s.doc_id for s in seed_dev})
        assert micro_f1(counts) == pytest.approx(expected)


def test_the_paired_benchmark_decodes_the_other_reading_with_the_bias_asked_for(
    sentence_reader, seed_dev, tiny_settings
):
    from bench.paired import read_counts
    from training.promotion import micro_f1

    meta = dataclasses.replace(sentence_reader.meta, decoding={"o_bias": 3.0})
    biased = Predictor(sentence_reader.backend, sentence_reader.tokenizer, meta, tiny_settings)

    stored = read_counts(biased, seed_dev, "document", "stored")
    unbiased = read_counts(biased, seed_dev, "document")

    assert micro_f1(stored) != pytest.approx(micro_f1(unbiased)), "an O bias of 3 changes what is found"
