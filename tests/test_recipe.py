"""The training recipe's levers: the O-logit decoding bias (fitted on dev, stored in the model folder,
applied by the one predictor), entity-free windows subsampled per epoch, NER intermediate training, case
markers for an uncased encoder."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from sciner.model_dir import read_metadata, write_metadata
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings
from service.process import quiet_env, ready_service
from training.batching import epoch_examples, split_by_entity
from training.calibrate import BiasPoint, bias_grid, calibrate_o_bias, choose_bias
from training.evaluate import evaluate_predictor
from training.features import Example
from training.param_groups import parameter_groups

TEXT = "We fine-tune BERT on SQuAD and reach 91.2 F1 with a learning rate of 3e-5 . GloVe embeddings help NER ."


# --- the bias, pure parts ---------------------------------------------------------------------
def test_the_bias_grid_spans_both_signs_and_always_holds_zero():
    assert bias_grid(-1.0, 3.0, 0.5) == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert 0.0 in bias_grid(0.0, 0.3, 0.25) and bias_grid(0.0, 0.0, 0.25) == [0.0]


def test_the_best_f1_wins_and_ties_go_to_the_smallest_bias():
    points = [BiasPoint(-0.5, 0.5, 0.5, 0.50), BiasPoint(0.0, 0.6, 0.4, 0.48), BiasPoint(1.0, 0.5, 0.5, 0.50)]
    assert choose_bias(points) == -0.5
    assert choose_bias([*points, BiasPoint(2.0, 0.5, 0.6, 0.55)]) == 2.0
    assert choose_bias([BiasPoint(0.0, 0, 0, 0.3), BiasPoint(0.25, 0, 0, 0.3)]) == 0.0


# --- the bias on a real model ------------------------------------------------------------------
@pytest.fixture(scope="module")
def biased_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a large O bias written into its folder, as calibration would store it."""
    out = tmp_path_factory.mktemp("biased") / "model"
    shutil.copytree(tiny_model_dir, out)
    meta = read_metadata(out)
    meta.decoding = {"o_bias": 4.0}
    write_metadata(out, meta)
    return out


def test_a_positive_bias_finds_more_entities_and_a_negative_one_fewer(tiny_model_dir, seed_dev):
    predictor = Predictor.from_model_dir(tiny_model_dir, Settings(intra_op_threads=1))
    logits = predictor.word_logits([s.tokens for s in seed_dev])

    def entities(bias: float) -> int:
        return sum(len(predictor.decode(w, bias).spans) for w in logits)

    assert entities(-3.0) < entities(0.0) < entities(3.0)
    assert entities(-100.0) == 0


def test_the_folders_bias_is_what_the_predictor_applies(biased_model_dir, seed_dev):
    predictor = Predictor.from_model_dir(biased_model_dir, Settings(intra_op_threads=1))
    assert predictor.o_bias == 4.0
    words = [s.tokens for s in seed_dev[:10]]
    direct = [p.tags for p in predictor.decode_all(predictor.word_logits(words), words, None, 4.0)]
    unbiased = [p.tags for p in predictor.decode_all(predictor.word_logits(words), words, None, 0.0)]
    assert [p.tags for p in predictor.predict_sentences(words)] == direct != unbiased


def test_calibration_picks_a_bias_no_worse_than_none_and_training_stores_it(tiny_model_dir, seed_dev):
    predictor = Predictor.from_model_dir(tiny_model_dir, Settings(intra_op_threads=1))
    result = calibrate_o_bias(predictor, seed_dev, bias_grid(-1.0, 3.0, 0.5))
    assert result.chosen.micro_f1 >= result.unbiased.micro_f1
    stored = read_metadata(tiny_model_dir).decoding  # train_and_export calibrated the fixture model
    assert "o_bias" in stored and stored["calibration"]["f1_calibrated"] >= stored["calibration"]["f1_unbiased"]
    evaluation, _ = evaluate_predictor(predictor, seed_dev)  # the folder's bias, through evaluation
    recorded = read_metadata(tiny_model_dir).metrics["dev"]["micro_f1"]  # from the calibration's own dev pass
    assert evaluation.micro_f1 == pytest.approx(recorded) == pytest.approx(stored["calibration"]["f1_calibrated"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_service_and_evaluation_decode_with_the_same_bias(biased_model_dir, tmp_path):
    predictor = Predictor.from_model_dir(biased_model_dir, Settings(intra_op_threads=1))
    expected = [(e.start, e.end, e.label) for e in predictor.predict_texts([TEXT])[0].entities]
    predictor.o_bias = 0.0
    unbiased = [(e.start, e.end, e.label) for e in predictor.predict_texts([TEXT])[0].entities]
    assert expected != unbiased, "the bias must change this text's entities, or the test proves nothing"
    env = quiet_env(tmp_path, SCINER_MODEL_URI=str(biased_model_dir), SCINER_INTRA_OP_THREADS="1")
    with ready_service(env, tmp_path / "serve.log") as srv:
        response = httpx.post(f"{srv.url}/extract", json={"text": TEXT}, timeout=60)
    assert response.status_code == 200, response.text
    assert [(e["start"], e["end"], e["label"]) for e in response.json()["entities"]] == expected


# --- entity-free windows per epoch ---------------------------------------------------------------
def test_examples_split_by_whether_they_carry_an_entity_label():
    examples = [Example([1, 5, 2], [-100, 0, -100]), Example([1, 6, 2], [-100, 3, -100]), Example([1, 2], [-100, -100])]
    assert split_by_entity(examples, outside_id=0) == ([1], [0, 2])


def test_each_epoch_keeps_every_entity_window_and_redraws_the_entity_free_ones():
    rng = random.Random(0)
    with_entity, free = [0, 1, 2], list(range(3, 103))
    first, second = epoch_examples(with_entity, free, 20, rng), epoch_examples(with_entity, free, 20, rng)
    for chosen in (first, second):
        assert chosen[:3] == with_entity and len(chosen) == 23 and set(chosen[3:]) <= set(free)
    assert first != second
    assert epoch_examples(with_entity, free, 500, rng) == with_entity + free


def test_training_with_an_empty_ratio_takes_fewer_steps_and_records_it(seed_train, tmp_path):
    from training.trainer import train_model

    settings = Settings(home=tmp_path, epochs=1, batch_size=8, train_empty_ratio=0.0, intra_op_threads=1)
    result = train_model(seed_train[:60], None, tmp_path / "m", settings, progress=False)
    training = read_metadata(result.model_dir).training
    assert training["train_empty_ratio"] == 0.0
    assert 0 < training["train_windows_per_epoch"] < training["train_windows"]


# --- NER intermediate training -------------------------------------------------------------------
def test_intermediate_training_leaves_an_encoder_that_sciner_fine_tunes(seed_train, seed_dev, tmp_path):
    from training.intermediate import LINEAGE_FILE, pretrain_ner
    from training.trainer import train_model

    other_task = [  # another label set, as SciERC's Task/Method/Metric
        Sentence(s.id, s.tokens, [t.replace("MethodName", "Method").replace("TaskName", "Task") for t in s.tags or []])
        for s in seed_train[:40]
    ]
    settings = Settings(home=tmp_path, epochs=1, batch_size=8, learning_rate=3e-4, intra_op_threads=1)
    info = pretrain_ner(other_task, None, tmp_path / "encoder", settings, progress=False)
    encoder = Path(info["encoder_dir"])
    lineage = json.loads((encoder / LINEAGE_FILE).read_text())
    assert "B-Method" in lineage["labels"].values() and lineage["data"]["train"]["sha256"]
    assert not list(tmp_path.glob(".encoder*")), "no staging folder left behind"

    tuned = train_model(
        seed_train[:40],
        seed_dev[:10],
        tmp_path / "tuned",
        settings.model_copy(update={"base_model": str(encoder)}),
        progress=False,
    )
    labels = read_metadata(tuned.model_dir).labels
    assert "B-MethodName" in labels and "B-Method" not in labels
    assert np.isfinite(tuned.history[0]["loss"])


def test_a_type_map_pairs_outside_with_outside_and_each_mapped_types_b_and_i_rows():
    from training.head_transfer import mapped_rows

    source = ["O", "B-Task", "I-Task", "B-Method", "I-Method", "B-Generic", "I-Generic"]
    target = ["O", "B-MethodName", "I-MethodName", "B-MetricValue", "I-MetricValue", "B-TaskName", "I-TaskName"]
    rows = mapped_rows(source, target, {"Task": "TaskName", "Method": "MethodName"})
    assert rows == {0: 0, 1: 3, 2: 4, 5: 1, 6: 2}  # MetricValue has no source: its rows start fresh


def test_type_maps_are_read_from_a_preset_or_pairs_and_bad_ones_say_why():
    from training.head_transfer import SCIERC_TYPE_MAP, parse_type_map

    assert parse_type_map("scierc") == SCIERC_TYPE_MAP
    assert parse_type_map(" Task=TaskName , Metric=MetricName") == {"Task": "TaskName", "Metric": "MetricName"}
    for bad, why in [("Task", "SOURCE=TARGET"), ("Task=A,Task=B", "twice"), ("A=X,B=X", "same target"), (",", "empty")]:
        with pytest.raises(ValueError, match=why):
            parse_type_map(bad)


def test_a_kept_intermediate_head_starts_the_mapped_rows_of_the_next_fine_tune(seed_train, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification

    from training.head_transfer import HEAD_FILE, HEAD_INFO_FILE, transfer_head
    from training.intermediate import LINEAGE_FILE, pretrain_ner
    from training.trainer import train_model

    other_task = [
        Sentence(s.id, s.tokens, [t.replace("MethodName", "Method") for t in s.tags or []]) for s in seed_train[:40]
    ]
    settings = Settings(home=tmp_path, epochs=1, batch_size=8, learning_rate=3e-4, intra_op_threads=1)
    with pytest.raises(ValueError, match="Task"):  # the data has no "Task" type: refused before training
        pretrain_ner(other_task, None, tmp_path / "bad", settings, progress=False, type_map={"Task": "TaskName"})
    encoder = Path(
        pretrain_ner(
            other_task, None, tmp_path / "encoder", settings, progress=False, type_map={"Method": "MethodName"}
        )["encoder_dir"]
    )
    assert (encoder / HEAD_FILE).is_file()
    assert json.loads((encoder / LINEAGE_FILE).read_text())["head_type_map"] == {"Method": "MethodName"}
    source = AutoModelForTokenClassification.from_pretrained(tmp_path / "encoder")  # encoder only: fresh head
    assert transfer_head(source, tmp_path / "nowhere") is None

    labels = ["O", "B-MethodName", "I-MethodName", "B-MetricValue", "I-MetricValue"]
    fresh = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)}
    )
    before = fresh.classifier.weight.detach().clone()
    carried = transfer_head(fresh, encoder)
    assert carried is not None and carried["rows"] == ["B-MethodName", "I-MethodName", "O"]
    saved = load_file(str(encoder / HEAD_FILE))
    saved_labels = json.loads((encoder / HEAD_INFO_FILE).read_text())["labels"]
    assert torch.equal(fresh.classifier.weight[1], saved["weight"][saved_labels.index("B-Method")])
    assert torch.equal(fresh.classifier.bias[0], saved["bias"][saved_labels.index("O")])
    assert torch.equal(fresh.classifier.weight[3], before[3]), "an unmapped type keeps its fresh row"

    tuned = train_model(
        seed_train[:20],
        None,
        tmp_path / "tuned",
        settings.model_copy(update={"base_model": str(encoder)}),
        progress=False,
    )
    assert read_metadata(tuned.model_dir).training["head_start"]["type_map"] == {"Method": "MethodName"}


def test_intermediate_training_widened_by_abstracts_learns_from_what_its_first_model_labelled(
    seed_train, seed_dev, tmp_path, caplog
):
    from training.intermediate import LINEAGE_FILE, pretrain_ner

    other_task = [
        Sentence(s.id, s.tokens, [t.replace("MethodName", "Method") for t in s.tags or []]) for s in seed_train[:30]
    ]
    abstracts = [Sentence(f"abs-{i}", s.tokens, None, doc_id=f"paper-{i // 3}") for i, s in enumerate(seed_dev[:12])]
    settings = Settings(home=tmp_path, epochs=1, batch_size=8, learning_rate=3e-4, intra_op_threads=1)
    with caplog.at_level(logging.INFO, logger="training.intermediate"):
        info = pretrain_ner(other_task, None, tmp_path / "encoder", settings, progress=False, unlabeled=abstracts)

    assert info["silver"] == {"sentences": 12, "labelled_by_dev_micro_f1": None}
    lineage = json.loads((Path(info["encoder_dir"]) / LINEAGE_FILE).read_text())
    assert lineage["data"]["unlabeled"]["sentences"] == 12 and lineage["data"]["unlabeled"]["sha256"]
    removed = [r.args[0] for r in caplog.records if r.getMessage().startswith("removed ")]
    assert removed and removed[0] >= 2, "the first model labelled the task's sentences and the abstracts"
    assert not list((tmp_path / "distill").glob("*.np*")), "its distributions are not kept once the model is gone"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "distill") == ["encoder"], "no work folder left"


def test_training_runs_on_cuda_only_when_asked_for_or_auto_and_present():
    from training.trainer import training_device

    assert training_device("auto", True) == "cuda" and training_device("cuda", True) == "cuda"
    assert training_device("auto", False) == "cpu" and training_device("cuda", False) == "cpu"
    assert training_device("cpu", True) == "cpu"


def test_the_new_head_learns_at_its_own_rate_and_norms_and_biases_skip_weight_decay():
    from transformers import BertConfig, BertForTokenClassification

    model = BertForTokenClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=5,
        )
    )
    groups = parameter_groups(
        model.named_parameters(), Settings(learning_rate=1e-4, head_lr_factor=20, weight_decay=0.01)
    )
    by_id = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(by_id) == len(named)  # every parameter in exactly one group
    assert by_id[id(named["classifier.weight"])]["lr"] == pytest.approx(2e-3)
    assert by_id[id(named["classifier.weight"])]["weight_decay"] == 0.01
    assert by_id[id(named["classifier.bias"])]["weight_decay"] == 0.0
    body = named["bert.encoder.layer.0.attention.self.query.weight"]
    assert (by_id[id(body)]["lr"], by_id[id(body)]["weight_decay"]) == (1e-4, 0.01)
    assert by_id[id(named["bert.embeddings.LayerNorm.weight"])]["weight_decay"] == 0.0


def test_with_layer_wise_decay_each_layer_learns_more_slowly_than_the_one_above_it():
    from transformers import BertConfig, BertForTokenClassification

    model = BertForTokenClassification(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32)
    )
    settings = Settings(learning_rate=1e-4, head_lr_factor=20, layer_lr_decay=0.5)
    groups = parameter_groups(model.named_parameters(), settings, num_layers=3)
    lr = {id(p): g["lr"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(lr) == len(named)

    def rate(name: str) -> float:
        return lr[id(named[name])]

    assert rate("classifier.weight") == pytest.approx(2e-3), "the new head keeps its own factor"
    assert rate("bert.encoder.layer.2.output.dense.weight") == pytest.approx(1e-4)
    assert rate("bert.encoder.layer.1.output.dense.weight") == pytest.approx(0.5e-4)
    assert rate("bert.encoder.layer.0.attention.self.query.weight") == pytest.approx(0.25e-4)
    assert rate("bert.embeddings.word_embeddings.weight") == pytest.approx(0.125e-4)
    assert rate("bert.embeddings.LayerNorm.weight") == pytest.approx(0.125e-4)
    # without the encoder's depth, or at 1.0, every body parameter learns at learning_rate
    for flat in (
        parameter_groups(model.named_parameters(), settings),
        parameter_groups(model.named_parameters(), Settings(learning_rate=1e-4), num_layers=3),
    ):
        head = {id(named["classifier.weight"]), id(named["classifier.bias"])}
        assert {g["lr"] for g in flat if not head & {id(p) for p in g["params"]}} == {1e-4}


def test_a_parameters_depth_is_read_from_bert_and_mpnet_names():
    from training.param_groups import layer_depth

    assert layer_depth("bert.embeddings.word_embeddings.weight", 6) == 0
    assert layer_depth("mpnet.encoder.layer.5.attention.attn.q.weight", 6) == 6
    assert layer_depth("bert.encoder.layer.10.output.dense.bias", 12) == 11
    assert layer_depth("mpnet.encoder.relative_attention_bias.weight", 6) == 7
    assert layer_depth("classifier.weight", 6) == 7


# --- case markers ----------------------------------------------------------------------------------
def test_case_markers_are_an_uncased_vocabularys_unused_tokens_and_others_train_without():
    from training.trainer import case_marker_ids

    class Tokenizer:
        def __init__(self, vocab: dict[str, int], uncased: bool = True) -> None:
            self.vocab, self.uncased = vocab, uncased

        def get_vocab(self) -> dict[str, int]:
            return self.vocab

        def tokenize(self, text: str) -> list[str]:
            return [text.lower() if self.uncased else text]

    unused = {"[unused0]": 1, "[unused1]": 2, "[unused2]": 3, "bert": 9}
    assert case_marker_ids(Tokenizer(unused)) == [1, 2, 3]
    assert case_marker_ids(Tokenizer(unused, uncased=False)) is None, "a cased tokenizer sees capitals itself"
    assert case_marker_ids(Tokenizer({"[unused0]": 1, "[unused1]": 2, "<s>": 0})) is None


def test_a_model_trained_with_case_markers_records_them_and_the_predictor_reads_with_them(seed_train, tmp_path):
    import dataclasses

    from training.trainer import train_model

    settings = Settings(home=tmp_path, epochs=1, batch_size=8, case_markers=True, intra_op_threads=1)
    result = train_model(seed_train[:40], None, tmp_path / "m", settings, progress=False)
    meta = read_metadata(result.model_dir)
    assert meta.case_markers == [1, 2, 3] and meta.training["case_markers"] is True
    predictor = Predictor.from_model_dir(result.model_dir, settings)  # no ONNX yet: PyTorch
    blind = Predictor(predictor.backend, predictor.tokenizer, dataclasses.replace(meta, case_markers=None), settings)
    words = [["We", "train", "BERT", "on", "SQuAD", "."]]
    assert not np.allclose(predictor.word_logits(words)[0].logits, blind.word_logits(words)[0].logits)
    lower = [["we", "train", "bert", "on", "squad", "."]]
    assert np.allclose(predictor.word_logits(lower)[0].logits, blind.word_logits(lower)[0].logits)
