"""What a benchmark's result file records about how it was started, and how the benchmarks group their data."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import env_prefix, settings_env
from bench.quality_report import command_line, row
from sciner.labels import ENTITY_TYPES


def test_a_result_records_the_settings_variables_it_ran_with_but_no_credentials(monkeypatch):
    monkeypatch.setenv("SCINER_SEED", "43")
    monkeypatch.setenv("SCINER_DISTILL_ALPHA", "0.2")
    monkeypatch.setenv("SCINER_API_WRITE_TOKENS", "secret-token")
    monkeypatch.setenv("SCINER_MLFLOW_TRACKING_URI", "http://user:pw@127.0.0.1:5000")
    monkeypatch.setenv("OTHER_SEED", "7")

    env = settings_env()

    assert env["SCINER_SEED"] == "43"
    assert env["SCINER_DISTILL_ALPHA"] == "0.2"
    assert not {"SCINER_API_WRITE_TOKENS", "SCINER_MLFLOW_TRACKING_URI", "OTHER_SEED"} & set(env)


def test_settings_variables_become_the_shell_prefix_of_a_command():
    assert env_prefix({"SCINER_DISTILL_ALPHA": "0.2", "SCINER_SEED": "43"}) == (
        "SCINER_DISTILL_ALPHA=0.2 SCINER_SEED=43 "
    )
    assert env_prefix({}) == ""


def test_a_settings_path_inside_the_checkout_is_shown_relative_to_it_and_one_outside_as_recorded(tmp_path):
    env = {"SCINER_BASE_MODEL": str(tmp_path / "var" / "bench" / "encoder"), "SCINER_GOLD_TRAIN_PATH": "/data/t.jsonl"}
    assert env_prefix(env, root=tmp_path) == "SCINER_BASE_MODEL=var/bench/encoder SCINER_GOLD_TRAIN_PATH=/data/t.jsonl "


def test_the_quality_table_shows_a_runs_command_after_its_settings_variables_and_older_runs_without():
    run = {"command": "bench/quality.py --name new", "at": "2026-12-02T00:00:00+00:00", "machine": "x86_64"}

    assert command_line("new", {**run, "env": {"SCINER_SEED": "43"}}).startswith(
        "- `new`: `SCINER_SEED=43 python bench/quality.py --name new` (2026-12-02"
    )
    assert command_line("old", run).startswith("- `old`: `python bench/quality.py --name new` (")


def test_a_run_recorded_without_capital_markers_shows_how_to_train_without_them():
    run = {"command": "bench/quality.py --name old", "at": "2026-12-01T00:00:00+00:00", "machine": "x86_64"}

    assert "`SCINER_CASE_MARKERS=false python bench/quality.py" in command_line("old", {**run, "settings": {}})
    marked = {**run, "settings": {"case_markers": True}}
    assert "`python bench/quality.py --name old`" in command_line("new", marked)


def _full_gold_run() -> dict:
    """A bench/quality.py result of a run on all gold train, every score 0.5: what a table row is built from."""
    ev = {"micro_f1": 0.5, "macro_f1": 0.5, "micro_precision": 0.5, "micro_recall": 0.5}
    ev["per_class"] = {c: {"f1": 0.5} for c in ENTITY_TYPES}
    run = {"dev": {"int8": ev}, "summary": {}, "train_seconds": 60, "sentences_per_second": {"int8": 300}}
    return run | {"train_documents": 148, "train_sentences": 39557}


def test_the_quality_table_names_the_teachers_a_student_learned_from():
    run = _full_gold_run()

    one = {**run, "teacher": {"folder": "var/bench/quality-mpnet-teacher", "unlabeled_sentences": 11309}}
    two = {**run, "teacher": {"folder": "var/a + var/b", "unlabeled_sentences": 11309}}

    assert "+ 11,309 abstract sent., taught by mpnet-teacher |" in row("one", one, unbiased=False)
    assert "+ 11,309 abstract sent., taught by a + b averaged |" in row("two", two, unbiased=False)
    assert "taught by" not in row("gold", run, unbiased=False)


def test_the_quality_table_says_when_a_run_trained_with_a_label_map_per_annotator_team():
    run = _full_gold_run()

    crowd = {**run, "settings": {"crowd_layer": True, "case_markers": True}}
    assert "capitals marked, one label map per annotator team (crowd layer) |" in row("c", crowd, unbiased=False)
    assert "crowd layer" not in row("plain", {**run, "settings": {"crowd_layer": False}}, unbiased=False)
    faster = {**run, "settings": {"crowd_layer": True, "crowd_layer_lr": 0.01}}
    assert "one label map per annotator team (crowd layer) learning at 0.01 |" in row("f", faster, unbiased=False)
    default_lr = {**run, "settings": {"crowd_layer": True, "crowd_layer_lr": 0.001}}
    assert "learning at" not in row("d", default_lr, unbiased=False)


def test_the_quality_table_says_when_a_run_smoothed_its_gold_labels():
    run = _full_gold_run()

    smoothed = {**run, "settings": {"crowd_layer": True, "label_smoothing": 0.1}}
    assert "(crowd layer), labels smoothed by 0.1 |" in row("s", smoothed, unbiased=False)
    assert "smoothed" not in row("p", {**run, "settings": {"label_smoothing": 0.0}}, unbiased=False)


def test_the_quality_table_says_when_a_run_kept_a_moving_average_of_its_weights():
    run = _full_gold_run()

    averaged = {**run, "settings": {"crowd_layer": True, "weight_ema": 0.998}}
    assert "(crowd layer), weights averaged while training (EMA 0.998) |" in row("e", averaged, unbiased=False)
    assert "averaged" not in row("p", {**run, "settings": {"weight_ema": 0.0}}, unbiased=False)


def test_the_quality_table_says_when_a_run_trained_on_adversarial_embeddings():
    run = _full_gold_run()

    adversarial = {**run, "settings": {"crowd_layer": True, "adversarial_epsilon": 1.0}}
    assert "(crowd layer), adversarial embeddings (FGM, epsilon 1) |" in row("a", adversarial, unbiased=False)
    assert "adversarial" not in row("p", {**run, "settings": {"adversarial_epsilon": 0.0}}, unbiased=False)


def test_the_quality_table_says_when_a_run_drew_fewer_entity_free_windows_another_batch_size_or_layer_decay():
    run = _full_gold_run()

    fewer = {**run, "settings": {"crowd_layer": True, "train_empty_ratio": 0.5, "batch_size": 8}}
    assert "(crowd layer), 50% of entity-free windows per epoch, batch 8 |" in row("f", fewer, unbiased=False)
    decayed = {**run, "settings": {"crowd_layer": True, "layer_lr_decay": 0.8}}
    assert "(crowd layer), layer-wise lr decay 0.8 |" in row("d", decayed, unbiased=False)
    assert "decay" not in row("p", {**run, "settings": {"layer_lr_decay": 1.0}}, unbiased=False)
    defaults = row("d", {**run, "settings": {"train_empty_ratio": 1.0, "batch_size": 16}}, unbiased=False)
    assert "entity-free" not in defaults and "batch" not in defaults


def test_the_quality_table_says_when_the_encoder_was_trained_on_other_ner_or_adapted_first():
    run = _full_gold_run()

    scierc = {**run, "args": {"intermediate": "../shared/data/scierc"}, "intermediate": {"encoder_dir": "x"}}
    assert row("i", scierc, unbiased=False).split(" | ")[1].endswith("; encoder first trained on scierc NER")
    adapted = {**run, "adaptation": {"steps": 500, "batch_size": 32, "sentences": 120688}}
    said = "; encoder first adapted by masked-LM (500 steps of 32 windows over 120,688 train + abstract sent.) |"
    assert said in row("a", adapted, unbiased=False)
    plain = row("p", {**run, "args": {"intermediate": "None"}, "intermediate": None, "adaptation": None}, False)
    assert "encoder first" not in plain
    both = {**scierc, "adaptation": {"steps": 500, "batch_size": 32, "sentences": 120688, "head_warmup_steps": 100}}
    said = (
        "; encoder first adapted by masked-LM (100 steps of its head alone, then 500 steps of 32 windows over 120,688 "
        "train + abstract sent.); encoder first trained on scierc NER |"
    )
    assert said in row("b", both, unbiased=False), "in the order the stages ran"


def test_the_quality_table_says_when_the_masked_lm_stage_read_documents_left_unlabelled():
    run = _full_gold_run()
    data = {"abstract_sentences": 0, "other_train_sentences_unlabeled": 31578}
    adapted = {**run, "adaptation": {"steps": 406, "batch_size": 32, "sentences": 39557, "data": data}}
    said = (
        "406 steps of 32 windows over 39,557 sent.: 7,979 of the train documents, "
        "31,578 of the other train documents, unlabelled) |"
    )
    assert said in row("t", adapted, unbiased=False)


def test_the_quality_table_says_when_a_run_started_from_another_runs_masked_lm_encoder():
    run = _full_gold_run()
    base = "/work/main/var/bench/quality-docs35-dapt-scierc-crowd-adapted"
    said = "; from the masked-LM encoder of docs35-dapt-scierc-crowd |"
    assert said in row("d", {**run, "settings": {"base_model": base}}, unbiased=False)
    own = {**run, "settings": {"base_model": base}, "adaptation": {"steps": 932, "batch_size": 32, "sentences": 89110}}
    assert "from the masked-LM encoder" not in row("o", own, unbiased=False), "its own adaptation is named once"


def test_the_quality_table_says_when_a_runs_figures_were_decoded_with_names_propagated():
    run = _full_gold_run()
    spread = {**run, "settings": {"crowd_layer": True, "name_propagation": True, "propagation_min_mentions": 2}}
    said = "(crowd layer); decoded with names propagated in documents (2+ mentions) |"
    assert said in row("n", spread, unbiased=False)
    assert "propagated" not in row("p", {**run, "settings": {"name_propagation": False}}, unbiased=False)
    assert "propagated" not in row("o", {**run, "settings": {"crowd_layer": True}}, unbiased=False), "older runs"


def test_the_quality_table_says_when_a_runs_int8_engine_had_its_activation_scales_calibrated():
    run = {**_full_gold_run(), "settings": {"crowd_layer": True}}
    calibrated = {**run, "int8": {"activation_scales": "calibrated", "smooth_alpha": 0.0}}
    assert "(crowd layer); int8 activation scales calibrated |" in row("c", calibrated, unbiased=False)
    assert "calibrated" not in row("d", {**run, "int8": {"activation_scales": "dynamic"}}, unbiased=False)
    assert "calibrated" not in row("o", run, unbiased=False), "older runs recorded no int8 recipe"


def test_the_quality_table_names_the_models_a_soup_averages_instead_of_training_data():
    run = {**_full_gold_run(), "settings": {"case_markers": False}}
    members = ["var/bench/quality-student-3ep-case-ens", "var/bench/quality-student-3ep"]
    soup = {**run, "soup": {"members": members, "case_markers": [1, 2, 3]}}

    cell = row("soup", soup, unbiased=False).split(" | ")[1]
    assert cell == "weights of student-3ep-case-ens + student-3ep averaged, capitals marked"


def test_the_speed_benchmark_joins_only_consecutive_sentences_of_one_document_into_a_text():
    from bench.inference import texts_of
    from sciner.records import Sentence

    gold = [Sentence(f"{d}#{k}", ["w"], ["O"], d) for d, k in [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("a", 3)]]
    ids = [[s.id for s in g] for g in texts_of(gold, 2)]
    assert ids == [["a#0", "a#1"], ["a#2"], ["b#0"], ["a#3"]]
    assert [len(g) for g in texts_of(gold, 1)] == [1] * 5


def test_the_paired_benchmark_parses_an_engine_per_folder_and_averages_distributions_by_label():
    from types import SimpleNamespace

    import numpy as np

    from bench.paired import mean_distribution, model_arg
    from sciner.predictor import WordLogits

    assert model_arg("var/m") == (Path("var/m"), "int8")
    assert model_arg("var/m:fp32") == (Path("var/m"), "fp32")
    first = SimpleNamespace(labels=["O", "B-X", "I-X"])
    second = SimpleNamespace(labels=["B-X", "O", "I-X"])  # the same labels in another order
    a = WordLogits(np.log(np.array([[0.8, 0.2, 1e-9]])), 1)
    b = WordLogits(np.log(np.array([[0.6, 0.4, 1e-9]])), 1)  # B-X 0.6, O 0.4
    (mean,) = mean_distribution([first, second], [[a], [b]])
    assert np.allclose(np.exp(mean.logits), [[0.6, 0.4, 0.0]], atol=1e-6)


def test_a_type_bias_lands_on_that_types_begin_and_inside_logits_only():
    from bench.type_bias import logit_shift

    labels = ["O", "B-TaskName", "I-TaskName", "B-MethodName", "I-MethodName"]
    assert logit_shift(labels, {"TaskName": -0.5}).tolist() == [0.0, -0.5, -0.5, 0.0, 0.0]


def test_per_type_biases_climb_to_the_best_grid_point_and_the_shared_one_prefers_the_smallest():
    from bench.type_bias import fit_per_type, fit_shared

    best = {"TaskName": -0.5, "MethodName": 0.75}

    def score(bias: dict[str, float]) -> float:
        return -sum((bias.get(t, 0.0) - b) ** 2 for t, b in best.items())

    grid = [-1.0, -0.5, 0.0, 0.25, 0.75]
    assert fit_per_type(score, list(best), grid) == best
    assert fit_shared(lambda bias: 1.0, list(best), grid) == {"TaskName": 0.0, "MethodName": 0.0}
    assert fit_shared(lambda bias: bias["TaskName"], list(best), grid) == {"TaskName": 0.75, "MethodName": 0.75}


def test_the_type_bias_halves_are_whole_documents_alternating_by_id():
    from bench.common import halves_by_document
    from sciner.records import Sentence

    dev = [Sentence(f"{d}#{k}", ["x"], ["O"], d) for d, k in [("b", 0), ("a", 0), ("c", 0), ("b", 1)]]
    assert halves_by_document(dev) == [[1, 2], [0, 3]]


def test_a_fitted_bias_is_described_shortly():
    from bench.type_bias import describe

    assert describe({"TaskName": 0.25, "MethodName": 0.25}) == "all +0.25"
    assert describe({"TaskName": 0.0, "MethodName": 0.0}) == "0"
    assert describe({"TaskName": -0.5, "MethodName": 0.0, "DatasetName": 1.5}) == "TaskName -0.50, DatasetName +1.50"


def test_a_side_speed_run_is_named_after_its_models_and_never_overwrites_the_reference():
    from bench.inference import result_name

    default = Path("var/bench/quality-model")
    assert result_name(default, [], default) == "inference"
    assert result_name(Path("var/bench/quality-soup-3ep"), [], default) == "inference-quality-soup-3ep"
    assert (
        result_name(default, [Path("var/bench/quality-soup-3ep")], default)
        == "inference-quality-model-vs-quality-soup-3ep"
    )


def test_cross_fitted_decoding_keeps_dev_order_and_with_no_bias_to_choose_is_the_plain_decoding(
    tiny_model_dir, seed_dev
):
    from bench.crossfit import crossfit_decode
    from sciner.predictor import Predictor
    from sciner.settings import Settings

    only_zero = Settings(o_bias_min=0.0, o_bias_max=0.0, intra_op_threads=1)
    predictor = Predictor.from_model_dir(tiny_model_dir, only_zero)
    logits = predictor.record_logits(seed_dev)

    crossfit = crossfit_decode(predictor, seed_dev, logits)
    tags = crossfit.tags

    assert len({s.doc_id for s in seed_dev}) >= 2  # two halves to fit on
    assert tags == [p.tags for p in predictor.decode_records(logits, seed_dev, 0.0)]
    assert [len(t) for t in tags] == [len(s.tokens) for s in seed_dev]
    assert crossfit.biases == [0.0, 0.0]
    three = crossfit_decode(predictor, seed_dev, logits, folds=[[0], [1], list(range(2, len(seed_dev)))])
    assert three.biases == [0.0, 0.0, 0.0], "one bias per fold, each fitted on the others"
    assert three.tags == tags


def test_the_team_benchmark_scores_each_annotator_team_on_its_own_sentences():
    from bench.team_f1 import sentences_by_team, team_scores
    from sciner.records import Sentence

    dev = [
        Sentence("a", ["BERT"], ["B-MethodName"], "d1", "small/team@1:f"),
        Sentence("b", ["BERT"], ["B-MethodName"], "d2", "big/team@2:f"),
        Sentence("c", ["SQuAD"], ["B-DatasetName"], "d2", "big/team@2:f"),
    ]
    teams = sentences_by_team(dev)
    assert teams == {"big/team": [1, 2], "small/team": [0]}, "largest team first"

    pred = [["B-MethodName"], ["O"], ["B-DatasetName"]]
    scores = team_scores([s.tags for s in dev], pred, teams, ["MethodName", "DatasetName"])
    assert scores["small/team"]["micro_f1"] == 1.0
    assert scores["big/team"]["recall"] == 0.5 and scores["big/team"]["entities"] == 2
    assert scores["all"]["sentences"] == 3


def test_label_consistency_counts_a_names_unlabelled_mentions_only_where_every_word_is_outside():
    from bench.error_types import label_consistency
    from sciner.records import Sentence

    o = "O"
    dev = [
        Sentence("a", ["BERT", "is", "good"], ["B-MethodName", o, o], "d1"),
        Sentence("b", ["BERT", "wins"], ["B-MethodName", o], "d1"),
        Sentence("c", ["we", "use", "BERT"], [o, o, o], "d1"),  # unlabelled mention
        Sentence("d", ["BERT", "base"], ["B-MethodName", "I-MethodName"], "d2"),  # inside a longer name: neither
        Sentence("e", ["the", "SQuAD", "set"], [o, "B-DatasetName", o], "d2"),
    ]
    c = label_consistency(dev, min_labelled=2)
    assert c["names"] == 1, "BERT only: SQuAD and 'BERT base' are labelled once"
    assert c["top"] == [{"name": "BERT", "labelled": 2, "unlabelled": 1}]
    assert abs(c["pooled_share"] - 2 / 3) < 1e-9 and abs(c["median_share"] - 2 / 3) < 1e-9

    everything = label_consistency(dev, min_labelled=1)
    assert everything["names"] == 3 and everything["top"][0]["name"] == "BERT"


def test_a_rescored_model_is_described_by_the_run_that_trained_it(tmp_path, monkeypatch):
    import json

    import bench.quality_report as report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    (tmp_path / "quality-gold-a.json").write_text(json.dumps({**_full_gold_run(), "settings": {"crowd_layer": True}}))
    again = {**_full_gold_run(), "rescored": "var/bench/quality-gold-a"}
    again["settings"] = {"name_propagation": True, "propagation_min_mentions": 2}
    cell = row("gold-a-again", again, unbiased=False).split(" | ")[1]
    assert cell.startswith("148 docs")
    assert "(crowd layer); the model of gold-a, scored again; decoded with names" in cell
    gone = {**again, "rescored": "var/bench/quality-gone"}
    assert row("x", gone, unbiased=False).split(" | ")[1].startswith("the model of gone, scored again")


def test_a_model_trained_outside_quality_py_is_described_by_the_lineage_its_folder_records():
    gpu_run = {
        "gpu": "NVIDIA H200",
        "teachers": [{"seed": 43, "dev_torch_micro_f1": 0.538}, {"seed": 48, "dev_torch_micro_f1": 0.555}],
        "teachers_minutes": 2.8,
        "student_minutes": 4.2,
    }
    lineage = {"train_sentences": 62009, "epochs": 2, "seed": 43, "case_markers": True, "crowd_layer": True}
    lineage["teachers"] = ["/tmp/ens/teacher-s43", "/tmp/ens/teacher-s48"]
    run = _full_gold_run() | {"rescored": "var/bench/never-scored", "rescored_training": lineage | {"gpu_run": gpu_run}}

    cell = row("ensemble", run, unbiased=False).split(" | ")[1]

    assert cell.startswith("62,009 sent. (gold train + abstracts), taught by 2 teachers averaged, 2 epochs, seed 43")
    assert "crowd layer" in cell and "trained on one NVIDIA H200 by bench/ensemble_distill.py in 7 min" in cell
    assert "seeds 43-48, dev F1 0.538-0.555 PyTorch" in cell


def test_the_command_of_a_model_trained_on_a_lent_gpu_names_the_run_that_trained_it():
    gpu_run = {"command": "bench/ensemble_distill.py --teachers 6", "env": {"SCINER_DEVICE": "cuda"}, "gpu": "H200"}
    run = {"command": "bench/quality.py --name e --rescore var/e", "at": "2026-12-04T17:06:49+00:00", "machine": "x"}
    run["rescored_training"] = {"gpu_run": gpu_run | {"at": "2026-12-04T17:03:22+00:00"}}

    line = command_line("e", run)

    assert line.startswith("- `e`: `python bench/quality.py --name e --rescore var/e`, after ")
    assert "`SCINER_DEVICE=cuda python bench/ensemble_distill.py --teachers 6` on one H200 (2026-12-04T17:03" in line


def test_the_quality_benchmark_scores_a_trained_model_again_unbiased_fitted_and_cross_fitted(
    tiny_model_dir, tmp_path, monkeypatch
):
    import json
    import sys

    import bench.common
    import bench.quality
    from tests.conftest import SEED_DEV, SEED_TRAIN

    monkeypatch.setattr(bench.common, "RESULTS", tmp_path / "results")
    copy = tmp_path / "copy"
    argv = ["bench/quality.py", "--name", "rescored", "--rescore", str(tiny_model_dir), "--out", str(copy)]
    monkeypatch.setattr(sys, "argv", [*argv, "--train", str(SEED_TRAIN), "--dev", str(SEED_DEV)])

    bench.quality.main()

    result = json.loads((tmp_path / "results" / "quality-rescored.json").read_text())
    assert result["rescored"] == str(tiny_model_dir) and (copy / "onnx").is_dir()
    fitted, unbiased = result["dev"]["int8"]["micro_f1"], result["dev_int8_unbiased"]["micro_f1"]
    assert fitted >= unbiased  # the bias is fitted on dev, and no bias is one of the grid's choices
    crossfit = result["crossfit"]
    assert len(crossfit["biases"]) == 2 and 0.0 <= crossfit["micro_f1"] <= 1.0
    assert set(result["sentences_per_second"]) == {"int8", "fp32"}
    assert result["int8"]["activation_scales"] == "calibrated"  # the engine's recipe, read from the model folder


def test_the_batch_dependence_benchmark_finds_none_in_fp32_and_counts_what_changes(tiny_model_dir, seed_dev):
    import numpy as np

    from bench.batch_dependence import changed_share, largest_logit_gap, read_model
    from sciner.predictor import WordLogits
    from sciner.settings import Settings

    a = [WordLogits(np.array([[1.0, 0.0]]), 1), WordLogits(np.zeros((0, 2)), 1)]
    b = [WordLogits(np.array([[1.5, -0.25]]), 1), WordLogits(np.zeros((0, 2)), 1)]
    assert largest_logit_gap(a, b) == 0.5 and largest_logit_gap(a, a) == 0.0
    assert changed_share([["O"], ["B-TaskName"]], [["O"], ["O"]]) == 0.5

    fp32 = read_model(tiny_model_dir, "fp32", seed_dev, Settings(intra_op_threads=1))
    assert fp32["largest_logit_gap"] < 1e-4 and fp32["sentences_changed"] == 0.0
    assert fp32["batched"]["micro_f1"] == fp32["alone"]["micro_f1"]


def test_a_soups_training_minutes_count_its_members_training(tmp_path, monkeypatch):
    import json

    import bench.quality_report as report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    for name, seconds in (("quality-a", 600.0), ("quality-b", 1200.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"train_seconds": seconds}))
    inner = {"train_seconds": 60.0, "soup": {"members": ["var/bench/quality-a", "var/bench/quality-b"]}}
    (tmp_path / "quality-inner.json").write_text(json.dumps(inner))

    assert report.train_minutes({"train_seconds": 600.0}) == "10"
    assert report.train_minutes(inner) == "31 (with its members)"  # 1 + 10 + 20
    outer = {"train_seconds": 60.0, "soup": {"members": ["var/bench/quality-inner", "var/bench/quality-a"]}}
    assert report.train_minutes(outer) == "42 (with its members)"  # 1 + 31 + 10
    unknown = {"train_seconds": 60.0, "soup": {"members": ["var/bench/quality-a", "var/bench/elsewhere"]}}
    assert report.train_minutes(unknown) == "1 + members'"


def test_masked_lm_text_of_the_unpicked_documents_keeps_their_words_and_drops_their_labels():
    from bench.quality import unpicked_sentences
    from sciner.records import Sentence

    every = [
        Sentence("a1", ["BERT", "wins"], ["B-MethodName", "O"], doc_id="a"),
        Sentence("b1", ["on", "SQuAD"], ["O", "B-DatasetName"], doc_id="b"),
        Sentence("a2", ["again"], ["O"], doc_id="a"),
        Sentence("c1", ["F1"], ["B-MetricName"], doc_id="c"),
    ]
    others = unpicked_sentences(every, [every[0]])  # document a labelled, b and c in hand unlabelled

    assert [(s.id, s.tokens, s.tags) for s in others] == [("b1", ["on", "SQuAD"], None), ("c1", ["F1"], None)]
    assert every[1].tags == ["O", "B-DatasetName"]  # the gold itself is untouched


def test_the_quality_table_holds_only_runs_scored_on_the_whole_gold_dev_split():
    from bench.quality_report import scored_on_gold_dev

    assert scored_on_gold_dev({"args": {"dev": "/work/shared/data/sciner/dev.jsonl"}})
    assert scored_on_gold_dev({"args": {}}), "runs that predate --dev were all scored on gold dev"
    assert not scored_on_gold_dev({"args": {"dev": "var/data/holdout-divyanshusheth/dev.jsonl"}})


def test_the_quality_benchmark_refuses_a_share_above_one():
    from bench.quality_options import quality_parser, settings_from

    args = quality_parser(None).parse_args(["--document-context", "--document-context-share", "1.5"])
    with pytest.raises(ValueError, match="document_context_share"):
        settings_from(args)
