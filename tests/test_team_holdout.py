"""Leaving one annotator team out (bench/team_holdout.py), and scoring a model on it with the O-logit bias it
was fitted with (bench/paired.py --bias stored): the proxy for SciNER's hidden test set, a team never seen."""

from __future__ import annotations

import dataclasses

import pytest

from bench.common import folds_by_team
from bench.paired import counts_of
from bench.team_holdout import folder_name, hold_out_team
from sciner.metrics import evaluate_tags
from sciner.predictor import Predictor
from sciner.records import Sentence
from training.promotion import micro_f1

A, B = "alice/sciner-hw", "bob/ner"


def _sentence(sid: str, team: str | None, doc: str) -> Sentence:
    source = f"{team}@{'0' * 40}:data/train.conll" if team else ""
    return Sentence(sid, ["BERT", "wins"], ["B-MethodName", "O"], doc, source=source)


def test_a_held_out_team_is_in_neither_train_nor_dev_and_is_scored_on_all_it_labelled():
    train = [_sentence("t1", A, "a1"), _sentence("t2", B, "b1"), _sentence("t3", None, "x"), _sentence("t4", A, "a2")]
    dev = [_sentence("d1", B, "b2"), _sentence("d2", A, "a3")]
    split = hold_out_team(train, dev, A)
    assert [s.id for s in split.train] == ["t2", "t3"]
    assert [s.id for s in split.dev] == ["d1"]
    assert [s.id for s in split.team] == ["t1", "t4", "d2"], "the team's train sentences first, then its dev ones"


def test_a_team_that_labelled_nothing_is_refused_with_the_teams_there_are():
    with pytest.raises(ValueError, match="alice/sciner-hw, bob/ner"):
        hold_out_team([_sentence("t1", A, "a1")], [_sentence("d1", B, "b1")], "carol/x")


def test_a_teams_split_folder_is_named_after_its_owner():
    assert folder_name("DivyanshuSheth/scientific-entity-recognition-anlp") == "holdout-divyanshusheth"


def test_a_bias_carried_across_teams_is_fitted_on_every_team_but_the_one_it_decodes():
    dev = [_sentence("d1", B, "b1"), _sentence("d2", A, "a1"), _sentence("d3", None, "x"), _sentence("d4", B, "b2")]
    assert folds_by_team(dev) == [[2], [1], [0, 3]], "sentences of no team together, then the teams sorted"


def test_the_stored_bias_decodes_as_the_served_model_does(tiny_model_dir, tiny_settings, seed_dev):
    plain = Predictor.from_model_dir(tiny_model_dir, tiny_settings)
    meta = dataclasses.replace(plain.meta, decoding={**plain.meta.decoding, "o_bias": -3.0})
    biased = Predictor(plain.backend, plain.tokenizer, meta, tiny_settings)
    logits = biased.record_logits(seed_dev)
    served = evaluate_tags([s.tags for s in seed_dev], [p.tags for p in biased.decode_records(logits, seed_dev)])
    unbiased = evaluate_tags([s.tags for s in seed_dev], [p.tags for p in biased.decode_records(logits, seed_dev, 0.0)])
    assert served.micro_f1 != unbiased.micro_f1, "a bias of -3 on the O logit changes what the model tags"
    assert micro_f1(counts_of(biased, seed_dev, logits, "stored")) == pytest.approx(served.micro_f1)
    assert micro_f1(counts_of(biased, seed_dev, logits, "none")) == pytest.approx(unbiased.micro_f1)
    with pytest.raises(ValueError, match="one of none, crossfit, stored"):
        counts_of(biased, seed_dev, logits, "fitted")
