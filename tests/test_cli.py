"""The sciner CLI end to end on tiny real data."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


def test_predict_writes_json_lines_and_label_studio_tasks(tiny_model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"text": "We use BERT on SQuAD."}) + "\n" + json.dumps({"title": "T", "abstract": "A b."}) + "\n"
    )
    ls = tmp_path / "ls.json"
    result = runner.invoke(app, ["predict", str(tiny_model_dir), "--file", str(src), "--label-studio", str(ls)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 2 and lines[0]["windows"] == 1
    assert len(json.loads(ls.read_text())) == 2


def test_predict_rejects_bad_input_with_a_message(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"nope": 1}\n')
    result = runner.invoke(app, ["predict", str(tiny_model_dir), "--file", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output


def test_evaluate_prints_a_per_class_table(tiny_model_dir):
    from tests.conftest import SEED_DEV

    result = runner.invoke(app, ["evaluate", str(tiny_model_dir), str(SEED_DEV)])
    assert result.exit_code == 0, result.output
    assert "| MethodName |" in result.stdout and "token accuracy" in result.stdout


def test_train_reports_the_file_line_of_invalid_data(tmp_path):
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"tokens": ["a"], "tags": ["I-X", "O"]}\n')
    result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "t.jsonl:1" in result.output


def test_train_then_export_writes_a_model_folder(tmp_path, sciner_env):
    import onnx

    from sciner.model_dir import read_metadata
    from tests.conftest import SEED_DEV, SEED_TRAIN
    from training.int8_recipe import ffn_output_nodes

    sciner_env(BATCH_SIZE=16)
    out = tmp_path / "m"
    result = runner.invoke(
        app, ["train", str(SEED_TRAIN), "--dev", str(SEED_DEV), "--out", str(out), "--epochs", "1", "--limit", "40"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["best_epoch"] == 1 and "dev" in summary
    assert (out / "onnx" / "int8" / "model.onnx").is_file()
    assert read_metadata(out).extra["int8"]["fp32_ffn_output"] is False
    assert read_metadata(out).extra["int8"]["activation_scales"] == "calibrated"  # the default

    sciner_env(INT8_FP32_FFN_OUTPUT="true")
    result = runner.invoke(app, ["export", str(out), "--dev", str(SEED_DEV)])
    assert result.exit_code == 0, result.output
    reexported = json.loads(result.stdout)
    assert "o_bias" in reexported and "micro_f1" in reexported["dev"]  # the bias is fitted again on the new int8
    assert read_metadata(out).extra["int8"]["fp32_ffn_output"] is True
    int8_ops = {n.name: n.op_type for n in onnx.load(str(out / "onnx" / "int8" / "model.onnx")).graph.node}
    assert [int8_ops[name] for name in ffn_output_nodes(onnx.load(str(out / "onnx" / "fp32" / "model.onnx")))] == [
        "MatMul"
    ] * 6

    sciner_env(INT8_FP32_FFN_OUTPUT=None, INT8_SMOOTH_ALPHA=0.5, GOLD_TRAIN_PATH=SEED_TRAIN)
    result = runner.invoke(app, ["export", str(out), "--dev", str(SEED_DEV)])
    assert result.exit_code == 0, result.output
    recipe = read_metadata(out).extra["int8"]
    assert recipe["smooth_alpha"] == 0.5 and recipe["calibration"]["sentences"] > 0
    int8_nodes = onnx.load(str(out / "onnx" / "int8" / "model.onnx")).graph.node
    assert sum(n.op_type == "Mul" and n.name.endswith("_smooth") for n in int8_nodes) == 6
    assert recipe["activation_scales"] == "calibrated"  # smoothing and calibrated scales together
    assert not any(n.op_type == "DynamicQuantizeLinear" for n in int8_nodes)

    sciner_env(INT8_ACTIVATION_SCALES="dynamic")
    result = runner.invoke(app, ["export", str(out), "--dev", str(SEED_DEV)])
    assert result.exit_code == 0, result.output
    recipe = read_metadata(out).extra["int8"]
    assert recipe["activation_scales"] == "dynamic" and recipe["smooth_alpha"] == 0.5
    int8_nodes = onnx.load(str(out / "onnx" / "int8" / "model.onnx")).graph.node
    assert any(n.op_type == "DynamicQuantizeLinear" for n in int8_nodes)
    assert sum(n.op_type == "Mul" and n.name.endswith("_smooth") for n in int8_nodes) == 6
    sciner_env(INT8_ACTIVATION_SCALES=None)

    result = runner.invoke(app, ["export", str(out), "--no-quantize", "--dev", str(SEED_DEV)])
    assert result.exit_code == 2 and "--no-quantize" in result.output
    result = runner.invoke(app, ["export", str(out), "--no-quantize"])
    assert result.exit_code == 0, result.output
    assert (out / "onnx" / "fp32" / "model.onnx").is_file() and not (out / "onnx" / "int8").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_distill_labels_gold_and_abstracts_apart_and_writes_a_student(tiny_model_dir, tmp_path, sciner_env):
    from sciner.io.jsonl import read_jsonl
    from sciner.model_dir import read_metadata
    from sciner.settings import Settings
    from tests.conftest import SEED_DEV, SEED_TRAIN
    from training.distill import unlabeled_sentences
    from training.gold import evaluation_split

    papers = tmp_path / "papers.jsonl"
    papers.write_text(
        "\n".join(
            json.dumps({"paper_id": f"p{i}", "title": "A study", "abstract": text})
            for i, text in enumerate(["We train BERT on SQuAD.", "Our CRF tagger improves NER on CoNLL-2003."])
        ),
        encoding="utf-8",
    )
    sciner_env(HOME=tmp_path / "home", BATCH_SIZE=16)
    out = tmp_path / "student"
    args = ["distill", str(tiny_model_dir), str(SEED_TRAIN), "--dev", str(SEED_DEV), "--unlabeled", str(papers)]
    result = runner.invoke(app, [*args, "--out", str(out), "--epochs", "1", "--exclude-eval-split"])
    assert result.exit_code == 0, result.output
    split = evaluation_split(read_jsonl(SEED_TRAIN), Settings())
    n_gold, n_abstract_sentences = len(split.train), len(unlabeled_sentences(papers))
    cached = (tmp_path / "home" / "distill").glob("*.json")
    assert sorted(json.loads(p.read_text())["sentences"] for p in cached) == [n_abstract_sentences, n_gold]
    data = read_metadata(out).data
    assert data["soft_targets"]["sentences"] == n_gold + n_abstract_sentences
    # the student left the split out; its teacher (trained without --exclude-eval-split) records nothing
    assert data["eval_split_excluded"] == split.tags
    assert data["soft_targets"]["teachers_eval_split_excluded"] == {str(tiny_model_dir): None}
    assert (out / "onnx" / "int8" / "model.onnx").is_file()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_can_leave_out_the_gates_evaluation_split_as_rounds_do(tmp_path, sciner_env):
    """A teacher for rounds must not have seen the documents its students are judged on."""
    from sciner.io.jsonl import read_jsonl
    from sciner.model_dir import read_metadata
    from sciner.settings import Settings
    from tests.conftest import SEED_DEV, SEED_TRAIN
    from training.gold import evaluation_split

    split = evaluation_split(read_jsonl(SEED_TRAIN), Settings())
    assert 0 < len(split.eval) < len(read_jsonl(SEED_TRAIN))
    sciner_env(HOME=tmp_path / "home")
    out = tmp_path / "teacher"
    args = ["train", str(SEED_TRAIN), "--dev", str(SEED_DEV), "--out", str(out), "--epochs", "1", "--no-export"]
    result = runner.invoke(app, [*args, "--exclude-eval-split"])
    assert result.exit_code == 0, result.output
    assert f"left out the evaluation split ({split.source}): {len(split.eval)} of" in result.output
    data = read_metadata(out).data
    assert data["train"]["sentences"] == len(split.train)
    assert data["eval_split_excluded"] == split.tags  # what `sciner challenge` checks


def test_every_command_is_registered_from_its_module():
    """The loop's and the model-building commands live in their own modules; a broken import there must fail
    the CLI, not drop the commands from it silently."""
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert {"train", "evaluate", "predict", "export"} <= names
    assert {"pretrain-ner", "adapt-encoder", "distill", "soup"} <= names
    assert {"ingest", "bootstrap", "retrain", "scheduler", "promote", "challenge", "rollback", "rounds"} <= names
    assert len(names) == len(app.registered_commands)  # no command registered twice


def test_exit_codes_say_bad_input_apart_from_failure(tmp_path):
    missing = runner.invoke(app, ["train", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    retrain = runner.invoke(app, ["retrain"])  # without --once: a usage error, not a failed round
    assert retrain.exit_code == 2 and "--once" in retrain.output
    bad_map = runner.invoke(app, ["pretrain-ner", str(tmp_path / "any.jsonl"), "--map-types", "Task"])
    assert bad_map.exit_code == 2 and "SOURCE=TARGET" in bad_map.output  # refused before any data is read
    seed_train = Path(__file__).parents[1] / "data" / "seed" / "train.jsonl"
    no_papers = runner.invoke(app, ["pretrain-ner", str(seed_train), "--papers", str(tmp_path / "none.jsonl")])
    assert no_papers.exit_code == 2 and "none.jsonl" in no_papers.output  # before any training


def test_an_option_outside_its_settings_range_is_refused_naming_the_setting(tmp_path):
    seed_train = Path(__file__).parents[1] / "data" / "seed" / "train.jsonl"
    zero = runner.invoke(app, ["train", str(seed_train), "--epochs", "0", "--out", str(tmp_path / "m")])
    assert zero.exit_code == 2 and "epochs: Input should be greater than or equal to 1" in zero.output
    assert not (tmp_path / "m").exists(), "refused before any training"
    negative = runner.invoke(app, ["adapt-encoder", str(seed_train), "--steps", "-1", "--out", str(tmp_path / "e")])
    assert negative.exit_code == 2 and "adapt_max_steps" in negative.output


def test_overrides_are_validated_as_the_environments_values_are():
    from sciner.settings import get_settings, with_overrides

    settings = get_settings()
    changed = with_overrides(settings, {"seed": 7, "document_context_share": 0.5})
    assert (changed.seed, changed.document_context_share) == (7, 0.5)
    assert changed.model_dump() == {**settings.model_dump(), "seed": 7, "document_context_share": 0.5}
    assert with_overrides(settings, {}) is settings
    with pytest.raises(ValueError, match=r"document_context_share: Input should be less than or equal to 1"):
        with_overrides(settings, {"document_context_share": 1.5})
