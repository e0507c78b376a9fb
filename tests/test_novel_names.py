"""bench/novel_names.py splits strict recall and precision by whether a name was labelled in training."""

from __future__ import annotations

import pytest

from bench.novel_names import labelled_names, mentions, split_scores
from sciner.records import Sentence

TRAIN = [
    Sentence(
        "t1",
        ["We", "use", "BERT", "on", "Penn", "Treebank"],
        ["O", "O", "B-MethodName", "O", "B-DatasetName", "I-DatasetName"],
    )
]
DEV_WORDS = [["bert", "beats", "ELMo"], ["on", "Penn", "Treebank", "and", "WikiText"]]
DEV_TAGS = [
    ["B-MethodName", "O", "B-MethodName"],
    ["O", "B-DatasetName", "I-DatasetName", "O", "B-DatasetName"],
]


def test_names_labelled_in_training_are_known_whatever_their_case_or_type():
    assert labelled_names(TRAIN) == {("bert",), ("penn", "treebank")}


def test_recall_and_precision_are_split_between_seen_and_novel_names():
    gold = mentions(DEV_TAGS)
    # BERT right, ELMo missed, Penn Treebank with the wrong type, WikiText right, "beats" spurious
    predicted = {(0, 0, 1, "MethodName"), (0, 1, 2, "TaskName"), (1, 1, 3, "MethodName"), (1, 4, 5, "DatasetName")}

    scores = split_scores(DEV_WORDS, gold, predicted, labelled_names(TRAIN))

    assert (scores["seen"]["gold"], scores["seen"]["recall"]) == (2, 0.5)
    assert (scores["seen"]["predicted"], scores["seen"]["precision"]) == (2, 0.5)
    assert (scores["novel"]["gold"], scores["novel"]["recall"]) == (2, 0.5)
    assert (scores["novel"]["predicted"], scores["novel"]["precision"]) == (2, 0.5)
    assert scores["all"]["f1"] == pytest.approx(0.5)
    assert split_scores(DEV_WORDS, gold, set(), set())["novel"] == {
        "gold": 4,
        "predicted": 0,
        "recall": 0.0,
        "precision": 0.0,
        "f1": 0.0,
    }
