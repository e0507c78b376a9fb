"""Mention swapping (``SCINER_MENTION_SWAP``): a mention becomes another of its type, the rest of the sentence and
its tags stay where they were, and nothing else changes."""

from __future__ import annotations

import random

import pytest

from sciner.records import Sentence
from training.mention_swap import MentionPool, mentions_of, swap_mentions, swap_sentence


def _sentence(sid: str, tagged: str) -> Sentence:
    """``"We use BERT/B-MethodName on SQuAD/B-DatasetName"`` -> a sentence with IOB2 tags (``?`` = unknown)."""
    tokens, tags = [], []
    for item in tagged.split():
        word, _, tag = item.partition("/")
        tokens.append(word)
        tags.append(None if tag == "?" else tag or "O")
    return Sentence(id=sid, tokens=tokens, tags=tags, doc_id="d1", meta={"annotator": "team-a"})


TRAIN = [
    _sentence("s1", "We fine-tune BERT/B-MethodName on SQuAD/B-DatasetName ."),
    _sentence("s2", "Graph/B-MethodName Attention/I-MethodName Networks/I-MethodName beat BERT/B-MethodName ."),
    _sentence("s3", "Results on the Penn/B-DatasetName Treebank/I-DatasetName improve ."),
]


def test_the_pool_holds_each_types_distinct_mentions_once_in_first_seen_order():
    pool = MentionPool.of(TRAIN)

    assert pool.by_type == {
        "MethodName": (("BERT",), ("Graph", "Attention", "Networks")),
        "DatasetName": (("SQuAD",), ("Penn", "Treebank")),
    }
    assert len(pool) == 4


def test_a_kept_type_has_no_names_in_the_pool_so_its_mentions_stay_where_they_are():
    pool = MentionPool.of(TRAIN, kept_types={"DatasetName"})

    swapped = swap_sentence(TRAIN[0], pool, 1.0, random.Random(0))

    assert set(pool.by_type) == {"MethodName"}
    assert swapped.tokens == ["We", "fine-tune", "Graph", "Attention", "Networks", "on", "SQuAD", "."]
    assert swapped.tags[-2:] == ["B-DatasetName", "O"]


def test_kept_types_are_read_comma_separated_from_the_environment(monkeypatch):
    from sciner.settings import Settings

    monkeypatch.setenv("SCINER_MENTION_SWAP_KEPT_TYPES", "TaskName, MetricName")

    assert Settings().mention_swap_kept_types == ["TaskName", "MetricName"]
    assert Settings(_env_file=None, mention_swap_kept_types=[]).mention_swap_kept_types == []


def test_training_refuses_a_kept_type_the_labels_do_not_have(tmp_path):
    from sciner.settings import Settings
    from training.trainer import train_model

    settings = Settings(home=tmp_path, mention_swap=0.3, mention_swap_kept_types=["TaskNmae"])

    with pytest.raises(ValueError, match="TaskNmae"):
        train_model(TRAIN, None, tmp_path / "model", settings, progress=False)


OTHER_NAMES = MentionPool({"MethodName": (("Graph", "Attention", "Networks"),), "DatasetName": (("SQuAD",),)})


def test_every_mention_becomes_another_of_its_type_and_the_words_around_it_stay():
    pool = MentionPool(dict(OTHER_NAMES.by_type, DatasetName=(("Penn", "Treebank"),)))

    swapped = swap_sentence(TRAIN[0], pool, 1.0, random.Random(0))

    assert swapped.tokens == ["We", "fine-tune", "Graph", "Attention", "Networks", "on", "Penn", "Treebank", "."]
    assert swapped.tags == "O O B-MethodName I-MethodName I-MethodName O B-DatasetName I-DatasetName O".split()


def test_a_long_mention_swapped_for_a_short_one_keeps_every_other_tag_in_place():
    pool = OTHER_NAMES
    sentence = _sentence("s4", "Penn/B-DatasetName Treebank/I-DatasetName helps/? parsing/O ./O")

    swapped = swap_sentence(sentence, pool, 1.0, random.Random(0))

    assert swapped.tokens == ["SQuAD", "helps", "parsing", "."]
    assert swapped.tags == ["B-DatasetName", None, "O", "O"]
    assert (swapped.id, swapped.doc_id, swapped.meta) == (sentence.id, sentence.doc_id, sentence.meta)
    assert sentence.tokens[0] == "Penn", "the original sentence is left as it was"


def test_a_type_with_one_name_and_an_unlucky_draw_leave_the_sentence_itself():
    only_bert = MentionPool.of([TRAIN[0]])
    never = random.Random(0)

    assert swap_sentence(_sentence("s5", "BERT/B-MethodName works"), only_bert, 1.0, never).tokens == ["BERT", "works"]
    assert swap_sentence(TRAIN[1], MentionPool.of(TRAIN), 0.0, never) is TRAIN[1]
    assert swap_sentence(_sentence("s6", "no entities here"), only_bert, 1.0, never).tokens == [
        "no",
        "entities",
        "here",
    ]


def test_an_epoch_swaps_in_order_and_leaves_the_kept_sentences_word_for_word():
    pool = MentionPool.of(TRAIN)

    epoch = swap_mentions(TRAIN, pool, 1.0, random.Random(3), keep={"s2"})

    assert [s.id for s in epoch] == ["s1", "s2", "s3"]
    assert epoch[1] is TRAIN[1]
    assert epoch[0].tokens != TRAIN[0].tokens and epoch[2].tokens != TRAIN[2].tokens
    assert swap_mentions(TRAIN, pool, 0.0, random.Random(3)) == TRAIN


@pytest.mark.parametrize("seed", range(20))
def test_swapped_tags_are_valid_iob2_and_count_the_same_mentions(seed):
    pool = MentionPool.of(TRAIN)
    for sentence in TRAIN:
        swapped = swap_sentence(sentence, pool, 0.5, random.Random(seed))
        assert len(swapped.tokens) == len(swapped.tags)
        assert [label for *_, label in mentions_of(swapped)] == [label for *_, label in mentions_of(sentence)]
        assert all(
            swapped.tags[i - 1] in (f"B-{t[2:]}", t) for i, t in enumerate(swapped.tags) if t and t.startswith("I-")
        )
