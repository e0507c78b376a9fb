import random

import numpy as np
import pytest

from sciner.decoding import allowed_transitions, softmax, spans_to_entities, strict_entities, tags_to_spans, viterbi
from sciner.labels import bio_labels
from sciner.metrics import evaluate_tags
from sciner.pretokenize import tokenize

LABELS = bio_labels(["MethodName", "DatasetName"])  # O B-M I-M B-D I-D


def probs_for(*rows):
    return np.array(rows, dtype=float)


def test_viterbi_never_starts_an_entity_with_i():
    start_ok, trans_ok = allowed_transitions(LABELS)
    # argmax would be I-MethodName first: invalid, must become a B or O
    p = probs_for([0.1, 0.3, 0.6, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0, 0.0])
    path = [LABELS[i] for i in viterbi(p, start_ok, trans_ok)]
    assert path == ["B-MethodName", "I-MethodName"]


def test_viterbi_never_continues_a_different_type():
    start_ok, trans_ok = allowed_transitions(LABELS)
    p = probs_for([0.0, 0.9, 0.0, 0.1, 0.0], [0.1, 0.0, 0.1, 0.0, 0.8])
    path = [LABELS[i] for i in viterbi(p, start_ok, trans_ok)]
    assert path[1] != "I-DatasetName"


def test_tags_to_spans_scores_are_means_of_word_scores():
    spans = tags_to_spans(["B-M", "I-M", "O", "B-D", "B-D"], [0.9, 0.7, 0.99, 0.6, 0.5])
    assert [(s.start, s.end, s.label) for s in spans] == [(0, 2, "M"), (3, 4, "D"), (4, 5, "D")]
    assert abs(spans[0].score - 0.8) < 1e-9


def test_unknown_tags_end_entities():
    assert [(s.start, s.end) for s in tags_to_spans(["B-M", None, "I-M"])] == [(0, 1), (2, 3)]


def test_strict_entities_read_unknown_tags_as_outside_and_an_orphan_i_as_a_start():
    assert strict_entities(["B-M", "I-M", None, "I-M", "I-D", "O"]) == {(0, 2, "M"), (3, 4, "M"), (4, 5, "D")}


@pytest.mark.parametrize("seed", range(5))
def test_strict_entities_count_what_seqeval_counts(seed):
    rng = random.Random(seed)
    tags = ["O", "B-M", "I-M", "B-D", "I-D", None]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(40)]
    pred = [[rng.choice(tags[:-1]) for _ in g] for g in gold]

    matched = sum(len(strict_entities(g) & strict_entities(p)) for g, p in zip(gold, pred, strict=True))
    predicted = sum(len(strict_entities(p)) for p in pred)
    expected = sum(len(strict_entities(g)) for g in gold)
    seqeval = evaluate_tags([[t or "O" for t in g] for g in gold], pred)

    assert matched > 0
    assert seqeval.micro_precision == pytest.approx(matched / predicted)
    assert seqeval.micro_recall == pytest.approx(matched / expected)


def test_entities_are_the_text_at_their_character_offsets():
    text = "Wir nutzen „BERT-große“ auf SQuAD\u00a0v2 ."
    toks = tokenize(text)
    spans = tags_to_spans(["O", "O", "O", "B-M", "O", "O", "B-D", "I-D", "O"][: len(toks)])
    for e in spans_to_entities(text, toks, spans):
        assert text[e.start : e.end] == e.text


def test_softmax_rows_sum_to_one():
    p = softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]))
    assert np.allclose(p.sum(-1), 1.0)


def test_the_label_list_of_training_tags_skips_masked_tags_and_untagged_sentences():
    from sciner.labels import labels_of

    tags = [["B-DatasetName", None, "O"], None, ["B-MethodName", "I-MethodName"], ["B-Zeta"]]
    assert labels_of(tags) == [
        "O",
        "B-MethodName",
        "I-MethodName",
        "B-DatasetName",
        "I-DatasetName",
        "B-Zeta",
        "I-Zeta",
    ]
