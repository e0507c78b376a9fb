"""Crowd layer: each gold team's label map sits between the shared logits and that
team's labels while training; what is exported and served is the shared model alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sciner.io.jsonl import read_jsonl
from sciner.records import Sentence
from sciner.settings import Settings
from tests.conftest import SEED_TRAIN
from tests.fixed_logits import FixedLogits
from training.batch_loss import batch_loss
from training.crowd_layer import MIN_CROWD_TEAMS, NO_TEAM, make_crowd_layer, team_ids, team_of
from training.distill import distillation_loss
from training.rounds import round_training_settings


def _sentence(source: str, auto: bool = False) -> Sentence:
    return Sentence("s", ["BERT"], ["B-MethodName"], "d", source, {"auto": True} if auto else {})


def test_a_gold_sentence_belongs_to_the_repository_its_source_names():
    shared = "prasoonvarshney/scientific-entity-recognition@00c03c69ecd7:data/annotated/a.conll"
    assert team_of(_sentence(shared)) == "prasoonvarshney/scientific-entity-recognition"
    assert team_of(_sentence("sciner/data/seed/seed.md:13")) == "sciner/data/seed/seed.md"
    assert team_of(_sentence("ingest-gold:/tmp/export.json")) == "ingest-gold"


def test_auto_annotated_or_unsourced_sentences_have_no_team():
    assert team_of(_sentence("paper:P17-1001", auto=True)) is None
    assert team_of(_sentence("")) is None


def test_teams_are_numbered_in_sorted_order_and_the_model_s_own_labels_get_none():
    sents = [_sentence("b/x@1:f"), _sentence("a/y@2:g"), _sentence("paper:P1", auto=True), _sentence("b/x@3:h")]
    teams, ids = team_ids(sents)
    assert teams == ["a/y", "b/x"]
    assert ids == [1, 0, NO_TEAM, 1]


def test_the_layer_starts_as_the_identity_and_maps_only_its_own_team_s_rows():
    layer = make_crowd_layer(n_teams=2, n_labels=3)
    logits = torch.randn(3, 4, 3)
    teams = torch.tensor([0, 1, NO_TEAM])
    assert torch.allclose(layer(logits, teams), logits), "a fresh layer changes nothing"

    with torch.no_grad():
        layer.bias[1] = torch.tensor([2.0, 0.0, 0.0])
    out = layer(logits, teams)
    assert torch.allclose(out[0], logits[0]) and torch.allclose(out[2], logits[2])
    assert torch.allclose(out[1], logits[1] + torch.tensor([2.0, 0.0, 0.0]))


def test_a_team_s_map_is_applied_as_logits_times_w_plus_b():
    layer = make_crowd_layer(n_teams=1, n_labels=2)
    with torch.no_grad():
        layer.weight[0] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # this team swaps the two labels
        layer.bias[0] = torch.tensor([0.5, -0.5])
    out = layer(torch.tensor([[[3.0, 1.0]]]), torch.tensor([0]))
    assert out.tolist() == [[[1.5, 2.5]]]


def test_a_round_trains_without_the_layer_unless_its_own_switch_asks_for_it():
    assert Settings().crowd_layer is True, "sciner train and sciner distill keep the layer"
    assert round_training_settings(Settings()).crowd_layer is False
    assert round_training_settings(Settings(round_crowd_layer=True)).crowd_layer is True
    assert round_training_settings(Settings(crowd_layer=False, round_crowd_layer=True)).crowd_layer is True
    unchanged = round_training_settings(Settings(learning_rate=3e-4))
    assert unchanged.learning_rate == 3e-4 and unchanged.round_soup is True


def test_gold_labels_are_scored_through_the_team_map_and_the_teacher_scores_the_shared_logits():
    logits = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]])
    labels = torch.tensor([[1], [1]])
    batch = {"input_ids": torch.zeros(2, 1), "attention_mask": torch.ones(2, 1), "labels": labels}
    model = FixedLogits(logits)
    settings = Settings()
    layer = make_crowd_layer(n_teams=1, n_labels=2)
    with torch.no_grad():
        layer.bias[0] = torch.tensor([0.0, 3.0])  # team 0 says label 1 far more often

    plain = batch_loss(model, batch, settings, layer)
    assert float(plain) == pytest.approx(float(model(**batch).loss)), "no teams in the batch: plain CE"

    mapped = batch_loss(model, {**batch, "teams": torch.tensor([0, NO_TEAM])}, settings, layer)
    shifted = torch.tensor([[2.0, 3.0], [0.0, 1.0]])
    assert float(mapped) == pytest.approx(float(torch.nn.functional.cross_entropy(shifted, labels.reshape(-1))))

    soft = torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]])
    soft_mask = torch.ones(2, 1, dtype=torch.bool)
    with_teacher = {**batch, "teams": torch.tensor([0, NO_TEAM]), "soft": soft, "soft_mask": soft_mask}
    expected = distillation_loss(
        logits,
        labels,
        soft,
        soft_mask,
        settings.distill_alpha,
        settings.distill_temperature,
        label_logits=shifted[:, None, :],
    )
    assert float(batch_loss(model, with_teacher, settings, layer)) == pytest.approx(float(expected))
    unmapped = distillation_loss(logits, labels, soft, soft_mask, settings.distill_alpha, settings.distill_temperature)
    assert float(expected) != pytest.approx(float(unmapped)), "the map changes the gold term"


def test_windows_carry_their_sentence_s_team_and_a_document_takes_its_first_sentence_s(tiny_model_dir):
    from sciner.encoding import load_tokenizer
    from sciner.model_dir import read_metadata
    from training.features import build_examples

    meta = read_metadata(tiny_model_dir)
    tok = load_tokenizer(str(tiny_model_dir / "tokenizer.json"))
    label2id = {lab: i for i, lab in enumerate(meta.labels)}
    sents = [
        Sentence("d#s0", ["BERT", "works", "."], ["B-MethodName", "O", "O"], "d"),
        Sentence("d#s1", ["On", "SQuAD", "."], ["O", "B-DatasetName", "O"], "d"),
        Sentence("d#s2", ["F1", "."], ["B-MetricName", "O"], "d"),
    ]
    args = (tok, label2id, meta.cls_id, meta.sep_id, 128, 32, meta.unk_id)
    assert [e.team for e in build_examples(sents, *args, teams=[4, 7, 7])] == [4, 7, 7]
    (together,) = build_examples(sents, *args, teams=[4, 7, 7], document_context=True)
    assert together.team == 4
    assert {e.team for e in build_examples(sents, *args)} == {NO_TEAM}


def test_a_model_trained_with_team_maps_is_served_without_them(seed_train, seed_dev, tmp_path):
    from sciner.backends import TorchBackend
    from sciner.model_dir import HF_DIR, read_metadata
    from sciner.predictor import Predictor
    from training.pipeline import train_and_export

    teams = ["team/a@1:x", "team/b@2:y"]
    train = [dataclasses.replace(s, source=teams[i % 2]) for i, s in enumerate(seed_train)]
    settings = Settings(home=tmp_path, epochs=1, batch_size=8, learning_rate=2e-4, intra_op_threads=1, crowd_layer=True)
    out = tmp_path / "model"
    train_and_export(train, seed_dev, out, settings, progress=False)

    meta = read_metadata(out)
    learned = meta.training["crowd_layer_teams"]
    assert sorted(learned) == ["team/a", "team/b"]
    assert all(t["map_change"] > 0 for t in learned.values()), "each team's map was trained"
    assert meta.training["crowd_layer"] is True and meta.training["crowd_layer_lr"] == settings.crowd_layer_lr

    onnx = Predictor.from_model_dir(out, settings, variant="fp32")
    torch_side = Predictor(TorchBackend.from_hf_dir(out / HF_DIR, "cpu"), onnx.tokenizer, onnx.meta, settings)
    words = [s.tokens for s in seed_dev[:3]]
    for a, b in zip(onnx.word_logits(words), torch_side.word_logits(words), strict=True):
        assert a.logits.shape[1] == len(meta.labels)
        np.testing.assert_allclose(a.logits, b.logits, atol=1e-3)


def test_gold_from_a_single_team_trains_without_the_layer(seed_train, seed_dev, tmp_path):
    from sciner.model_dir import read_metadata
    from training.trainer import train_model

    assert len(team_ids(seed_train)[0]) == 1, "the seed set is one annotator's"
    settings = Settings(home=tmp_path, epochs=1, batch_size=8, intra_op_threads=1, crowd_layer=True)
    train_model(seed_train[:16], None, tmp_path / "model", settings, progress=False)
    assert read_metadata(tmp_path / "model").training["crowd_layer_teams"] is None


def test_the_crowd_layer_is_on_by_default_yet_the_one_team_seed_set_trains_without_it():
    assert Settings().crowd_layer is True
    seed_teams, _ = team_ids(read_jsonl(SEED_TRAIN))
    assert len(seed_teams) == 1 < MIN_CROWD_TEAMS
