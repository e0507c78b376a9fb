"""Another NER corpus trained with the gold as one more annotator team (training/auxiliary.py)."""

from __future__ import annotations

import pytest

from sciner.labels import repair_bio
from sciner.records import Sentence
from training.auxiliary import AUXILIARY_META, auxiliary_sentences, map_tags
from training.crowd_layer import team_ids
from training.head_transfer import SCIERC_TYPE_MAP

SCIERC_SOURCE = "allenai/scibert@4afc627e9eafdcebe6958b51e16d89f15c6f95a5:data/ner/sciie/raw/train.json"


def scierc_row(tags: list[str], row_id: str = "J87-1003-s0") -> Sentence:
    return Sentence(
        id=row_id, tokens=[f"w{i}" for i in range(len(tags))], tags=tags, doc_id="J87-1003", source=SCIERC_SOURCE
    )


def test_mapped_types_are_renamed_and_the_others_become_outside() -> None:
    tags = ["B-Method", "I-Method", "O", "B-Generic", "B-OtherScientificTerm", "I-OtherScientificTerm", "B-Material"]
    assert map_tags(tags, SCIERC_TYPE_MAP) == ["B-MethodName", "I-MethodName", "O", "O", "O", "O", "B-DatasetName"]


def test_mapping_keeps_strict_bio_and_unknown_tags() -> None:
    mapped = map_tags(["B-Generic", "I-Generic", "B-Task", "I-Task", None], SCIERC_TYPE_MAP)
    assert mapped == ["O", "O", "B-TaskName", "I-TaskName", None]
    strict = [t for t in mapped if t is not None]
    assert repair_bio(strict) == strict


def test_auxiliary_sentences_form_a_team_of_their_own() -> None:
    gold = Sentence(id="g1", tokens=["BERT"], tags=["B-MethodName"], doc_id="d1", source="team/a@0:x.conll")
    aux = auxiliary_sentences([scierc_row(["B-Metric", "O"])], SCIERC_TYPE_MAP, "scierc", {"team/a"})
    assert aux[0].id == "aux:scierc:J87-1003-s0"
    assert aux[0].doc_id == "aux:scierc:J87-1003"
    assert aux[0].tags == ["B-MetricName", "O"]
    assert aux[0].meta[AUXILIARY_META] == "scierc"
    teams, index = team_ids([gold, *aux])
    assert teams == ["allenai/scibert", "team/a"]
    assert index == [1, 0]


def test_a_corpus_sharing_a_gold_team_or_without_a_source_is_refused() -> None:
    with pytest.raises(ValueError, match="one of the gold's teams"):
        auxiliary_sentences([scierc_row(["O"])], SCIERC_TYPE_MAP, "scierc", {"allenai/scibert"})
    unsourced = Sentence(id="x", tokens=["a"], tags=["O"])
    with pytest.raises(ValueError, match="no source"):
        auxiliary_sentences([unsourced], SCIERC_TYPE_MAP, "scierc", set())
    with pytest.raises(ValueError, match="no tags"):
        auxiliary_sentences([Sentence(id="y", tokens=["a"], source=SCIERC_SOURCE)], SCIERC_TYPE_MAP, "scierc", set())
