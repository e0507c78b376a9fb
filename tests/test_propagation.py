"""Document-level name propagation: the pure rule, its character-offset form, and the predictor applying it
on every path (texts, sentences, records, evaluation) the same way."""

from __future__ import annotations

import pytest

from sciner.decoding import WordSpan, tags_to_spans
from sciner.labels import OUTSIDE
from sciner.predictor import Predictor
from sciner.propagation import PropagationRule, document_groups, propagate_names, propagate_text
from sciner.records import Entity, Sentence
from sciner.settings import Settings

NAMES = PropagationRule.of(["MethodName", "DatasetName", "TaskName", "MetricName", "HyperparameterName"], 2, 4, 2)
o = OUTSIDE


def decoded(tags: list[str], score: float = 0.9) -> tuple[list[str], list[WordSpan]]:
    return tags, tags_to_spans(tags, [score] * len(tags))


def run(sentences: list[str], tags: list[list[str]], documents=None, rule=NAMES, scores=None):
    words = [s.split() for s in sentences]
    scores = scores or [0.9] * len(sentences)
    pairs = [decoded(t, sc) for t, sc in zip(tags, scores, strict=True)]
    return propagate_names(words, [p[0] for p in pairs], [p[1] for p in pairs], documents, rule)


def test_a_name_labelled_twice_in_a_document_is_labelled_at_its_other_mentions():
    out = run(
        ["we fine-tune BERT", "BERT wins", "then BERT loses"],
        [[o, o, "B-MethodName"], ["B-MethodName", o], [o, o, o]],
        documents=["d", "d", "d"],
    )
    assert out[2][0] == [o, "B-MethodName", o]
    assert out[2][1] == [WordSpan(1, 2, "MethodName", 0.9)]
    assert out[0][0] == [o, o, "B-MethodName"], "what the model labelled stays"


def test_one_stray_prediction_is_not_copied_and_documents_do_not_share_names():
    sentences = ["we use BERT", "BERT again", "and BERT"]
    once = run(sentences, [[o, o, "B-MethodName"], [o, o], [o, o]], documents=["d", "d", "d"])
    assert [t for t, _ in once] == [[o, o, "B-MethodName"], [o, o], [o, o]]
    apart = run(sentences, [[o, o, "B-MethodName"], ["B-MethodName", o], [o, o]], documents=["a", "a", "b"])
    assert apart[2][0] == [o, o], "document b never labelled BERT"


def test_value_types_short_and_long_names_are_not_copied():
    sentences = ["lr 3e-5 and x", "lr 3e-5 and x", "3e-5 x"]
    tags = [[o, "B-HyperparameterValue", o, "B-MethodName"]] * 2 + [[o, o]]
    out = run(sentences, tags, documents=["d"] * 3)
    assert out[2][0] == [o, o], "a value means something else at each mention; 'x' has one character"
    long_name = "a b c d e"
    tags = [["B-TaskName"] + ["I-TaskName"] * 4] * 2 + [[o] * 5]
    out = run([long_name] * 3, tags, documents=["d"] * 3)
    assert out[2][0] == [o] * 5, "names longer than four words are not copied"


def test_nothing_the_model_labelled_is_overwritten_and_longer_names_go_first():
    out = run(
        ["BERT large wins", "BERT large wins", "the BERT large model", "SQuAD BERT"],
        [
            ["B-MethodName", "I-MethodName", o],
            ["B-MethodName", "I-MethodName", o],
            [o, o, o, o],
            ["B-DatasetName", o],
        ],
        documents=["d"] * 4,
    )
    assert out[2][0] == [o, "B-MethodName", "I-MethodName", o], "the two-word name, not a one-word part of it"
    assert out[3][0] == ["B-DatasetName", o], "'BERT' alone was never labelled twice"


def test_the_type_given_most_often_wins_and_the_copy_scores_the_best_mention():
    out = run(
        ["GLUE", "GLUE", "GLUE", "on GLUE"],
        [["B-DatasetName"], ["B-TaskName"], ["B-DatasetName"], [o, o]],
        documents=["d"] * 4,
        scores=[0.5, 0.6, 0.8, 0.1],
    )
    assert out[3][1] == [WordSpan(1, 2, "DatasetName", 0.8)]


def test_without_documents_each_sentence_is_its_own_document():
    assert document_groups(None, 3) == [[0], [1], [2]]
    assert document_groups(["a", None, "a", "b"], 4) == [[0, 2], [3], [1]]
    with pytest.raises(ValueError, match="2 document keys for 3 sentences"):
        document_groups(["a", "b"], 3)
    out = run(["BERT and BERT", "BERT"], [["B-MethodName", o, "B-MethodName"], [o]])
    assert out[1][0] == [o], "no document: sentences do not share names"


def test_the_character_offset_form_gives_the_entities_predict_texts_orders():
    text = "We train BERT. BERT wins. Then BERT loses."
    b1, b2 = text.index("BERT"), text.index("BERT", 10)
    entities = [
        Entity(start=b1, end=b1 + 4, text="BERT", label="MethodName", score=0.7),
        Entity(start=b2, end=b2 + 4, text="BERT", label="MethodName", score=0.9),
    ]
    out = propagate_text(text, entities, NAMES)
    b3 = text.index("BERT", b2 + 1)
    assert [(e.start, e.end, e.label, e.score) for e in out] == [
        (b1, b1 + 4, "MethodName", 0.7),
        (b2, b2 + 4, "MethodName", 0.9),
        (b3, b3 + 4, "MethodName", 0.9),
    ]
    off_grid = [Entity(start=b1 + 1, end=b1 + 4, text="ERT", label="MethodName", score=0.7), *entities]
    assert propagate_text(text, off_grid, NAMES) == off_grid, "entities off the word grid: left as they are"


# --- the predictor ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generous(tiny_model_dir):
    """The tiny model with propagation from a single mention, so that it changes something on seed text."""
    settings = Settings(intra_op_threads=1, propagation_min_mentions=1, propagation_min_chars=1)
    return Predictor.from_model_dir(tiny_model_dir, settings)


def test_the_predictor_propagates_within_a_text_or_document_and_can_be_told_not_to(generous, seed_dev):
    words = [s.tokens for s in seed_dev]
    documents = [s.doc_id for s in seed_dev]
    logits = generous.word_logits(words, documents)
    plain = generous.decode_all(logits, words, documents, propagate=False)
    spread = generous.decode_all(logits, words, documents)
    added = sum(len(b.spans) - len(a.spans) for a, b in zip(plain, spread, strict=True))
    assert added > 0, "the seed dev set repeats names, or this test proves nothing"
    for a, b in zip(plain, spread, strict=True):
        assert {(s.start, s.end, s.label) for s in a.spans} <= {(s.start, s.end, s.label) for s in b.spans}
        assert (b.probs == a.probs).all(), "the model's probabilities are not rewritten"
    assert [p.tags for p in generous.predict_records(seed_dev)] == [p.tags for p in spread]
    assert [p.tags for p in generous.predict_sentences(words, documents)] == [p.tags for p in spread]


def test_evaluation_scores_the_propagated_decoding(generous, seed_dev):
    from sciner.metrics import evaluate_tags
    from training.evaluate import evaluate_predictor

    evaluation, pred = evaluate_predictor(generous, seed_dev)
    assert pred == [p.tags for p in generous.predict_records(seed_dev)]
    assert evaluation.micro_f1 == pytest.approx(evaluate_tags([s.tags for s in seed_dev], pred).micro_f1)


def test_a_text_in_pieces_then_propagated_equals_the_text_at_once(generous, seed_dev):
    """What the service's long lane does: pieces of whole sentences predicted apart, then propagated as one.
    Every seed dev document is cut in two; in at least one of them propagation across the cut must add entities
    (which ones the tiny model labels varies from run to run), or the test proves nothing."""
    by_doc: dict[str, list[Sentence]] = {}
    for s in seed_dev:
        by_doc.setdefault(s.doc_id, []).append(s)
    added = 0
    for doc in by_doc.values():
        sentences = [" ".join(s.tokens) for s in doc]
        if len(sentences) < 2:
            continue
        first, second = " ".join(sentences[: len(sentences) // 2]), " ".join(sentences[len(sentences) // 2 :])
        text = f"{first} {second}"
        whole = generous.predict_texts([text])[0].entities
        pieces = generous.predict_texts([first, second], propagate=False)
        shift = len(first) + 1
        joined = [
            *pieces[0].entities,
            *[e.model_copy(update={"start": e.start + shift, "end": e.end + shift}) for e in pieces[1].entities],
        ]
        assert generous.propagate_text(text, joined) == whole
        added += len(whole) - len(joined)
    assert added > 0, "propagation must add entities in some document, or this test proves nothing"


def test_propagation_off_in_the_settings_is_the_plain_decoding(tiny_model_dir, seed_dev):
    off = Predictor.from_model_dir(tiny_model_dir, Settings(intra_op_threads=1, name_propagation=False))
    assert off.propagation is None
    logits = off.record_logits(seed_dev)
    assert [p.tags for p in off.predict_records(seed_dev)] == [off.decode(w).tags for w in logits]
    assert off.propagate_text("BERT . BERT", []) == []


def test_a_trained_folder_records_the_propagation_its_dev_figures_were_decoded_with(tiny_model_dir):
    from sciner.model_dir import read_metadata

    recorded = read_metadata(tiny_model_dir).decoding["name_propagation"]
    defaults = Settings()
    assert recorded == {
        "types": sorted(defaults.propagation_types),
        "min_mentions": defaults.propagation_min_mentions,
        "max_words": defaults.propagation_max_words,
        "min_chars": defaults.propagation_min_chars,
    }
