"""What reviewers, newcomers and operators read, without servers: verdicts, the review page and markdown,
the lineage record, the champion history, the quiet console, model references and the CLI's help."""

from __future__ import annotations

import json
import logging
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from sciner import champion_history as ch
from sciner.mlflow_card import input_texts
from sciner.quiet import DropKnown, Rule
from training.lineage import lineage
from training.review import errors_markdown, plain, render
from training.review_html import page, spans
from training.verdict import decision_headline, description, headline, manual_description, points


# --- the review folder -------------------------------------------------------------------------
def test_the_errors_page_puts_the_candidate_first_and_names_each_kind():
    one = {"Task": {"exact": 1, "type": 0, "boundary": 0, "boundary_type": 0, "missed": 1, "spurious": 2}}
    md = errors_markdown({"candidate": one, "champion v3": one})
    assert md.index("## candidate") < md.index("## champion v3")
    assert "| Task | 2 | 1 (50%) |" in md and "missed: nothing predicted over it" in md


# --- verdicts ---------------------------------------------------------------------------------
def test_the_verdict_leads_with_the_decision_and_the_number_that_decided_it():
    assert points(0.009) == "+0.9" and points(-0.0042) == "\u22120.4"
    assert headline(True, 0.009, champion="12") == "Promoted: +0.9 F1 vs v12"
    drop = headline(
        False,
        0.003,
        champion="12",
        checks={"f1_delta": True, "class_drop": False},
        class_drops={"TaskName": 0.042, "MethodName": 0.01},
    )
    assert drop == "Rejected: TaskName \u22124.2 F1 vs v12"
    assert (
        headline(False, 0.001, champion="3", checks={"f1_delta": False}, min_f1_delta=0.005)
        == "Rejected: +0.1 F1 vs v3, below +0.5"
    )
    assert (
        headline(False, 0.004, champion="3", checks={"f1_delta": True, "bootstrap_ci": False}, ci_lower=-0.002)
        == "Rejected: +0.4 F1 vs v3, 95% lower bound \u22120.2"
    )
    assert headline(False, 0.02, champion="3", checks={"noise_floor": False}) == "Rejected: +2.0 F1 vs v3 (noise_floor)"
    decision = {"promote": np.bool_(False), "delta": -0.01, "checks": {"f1_delta": np.bool_(False)}, "ci": None}
    assert decision_headline(decision, "2").startswith("Rejected: \u22121.0 F1 vs v2")


def test_the_description_is_one_line_verdict_first_and_short_enough_for_the_version_list():
    text = description(
        "Rejected: +0.1 F1 vs v3, below +0.5",
        "Not promoted: micro-F1 0.5010 vs champion v3 0.5000 (+0.0010); the gain is too small.",
        "round 4, parent v3",
    )
    assert text.startswith("Rejected: +0.1 F1 vs v3") and "Not promoted" not in text and "\n" not in text
    assert text.endswith("the gain is too small (round 4, parent v3).")


def test_a_manual_promotion_says_who_why_and_when_first_and_keeps_the_gate_once():
    gate = "Rejected: TaskName \u22124.2 F1 vs v2 \u2014 ..."
    first = manual_description("alice", "reviewed the errors", "2026-11-30T20:00:00+00:00", gate)
    assert first == f"Promoted by hand by alice (2026-11-30T20:00:00+00:00): reviewed the errors. | gate: {gate}"
    again = manual_description("bob", "still good.", "2026-12-01T08:00:00+00:00", first)
    assert again == f"Promoted by hand by bob (2026-12-01T08:00:00+00:00): still good. | gate: {gate}"


# --- the review page and markdown -------------------------------------------------------------
ROW = {
    "id": "s1",
    "tokens": ["We", "use", "BERT", "on", "<SQuAD>", "."],
    "gold": ["O", "O", "B-MethodName", "O", "B-DatasetName", "O"],
    "champion": ["O", "O", "B-MethodName", "O", "O", "O"],
    "candidate": ["O", "O", "B-MethodName", "O", "B-TaskName", "O"],
}


class Chips(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chips: list[tuple[str, str, bool]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-who" in a:
            self.chips.append((a["data-who"], a["data-label"], "wrong" in a.get("class", "")))


def test_the_page_highlights_each_models_entities_outlines_the_wrong_ones_and_lists_the_missed():
    same = {**ROW, "id": "s0", "champion": ROW["gold"], "candidate": ROW["gold"]}
    html = page(
        [ROW, same],
        title="Round 3",
        verdict="Rejected: +0.1 F1 vs v2",
        decision="rejected",
        table_html="<table></table>",
        confusion_png=b"\x89PNG",
    )
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert "&lt;SQuAD&gt;" in html and "<SQuAD>" not in html  # tokens are escaped
    parser = Chips()
    parser.feed(html.split("</p>", 2)[2])  # after the verdict and the legend
    first = parser.chips[:5]
    assert first == [
        ("gold", "MethodName", False),
        ("gold", "DatasetName", False),
        ("champion", "MethodName", False),
        ("candidate", "MethodName", False),
        ("candidate", "TaskName", True),
    ]
    assert html.count('class="miss"') == 2 + 1  # champion and candidate missed SQuAD; +1 in the legend
    assert "models disagree" in html and "data:image/png;base64,iVBORw==" in html
    for label in ("MethodName", "TaskName", "DatasetName", "MetricValue"):
        assert f">{label}</span>" in html  # legend


def test_the_markdown_keeps_classes_as_text_and_marks_differences():
    line = render(ROW["tokens"], ROW["candidate"], ROW["gold"])
    assert line == (
        "We use **BERT** ⟨MethodName⟩ on **\\<SQuAD\\>** ⟨TaskName ✗⟩ . — missed: ~~\\<SQuAD\\>~~ ⟨DatasetName⟩"
    )
    assert "](" not in line
    assert render(["a", "b"], [None, "B-MethodName"]) == "?a **b** ⟨MethodName⟩"
    assert spans(["B-X", "I-X", None, "B-Y"]) == {spans(["B-X", "I-X"]).pop(), *spans(["O", "O", "O", "B-Y"])}


def test_json_artifacts_hold_real_booleans_not_strings():
    decision = {"checks": {"class_drop": np.bool_(False), "f1_delta": True}, "delta": np.float64(0.5), "n": np.int64(3)}
    out = json.loads(json.dumps(plain(decision)))
    assert out == {"checks": {"class_drop": False, "f1_delta": True}, "delta": 0.5, "n": 3}


def test_lineage_hashes_the_data_hashes_not_their_paths():
    def lineage_of(train_path: str, auto_sha256: str) -> dict:
        return lineage(
            gold_paths={"train": train_path},
            gold_hashes={"train": "1" * 64},
            train_sha256="2" * 64,
            auto_sha256=auto_sha256,
            base_model="m",
        )

    a = lineage_of("/a/train.jsonl", "3" * 64)
    b = lineage_of("/elsewhere/train.jsonl", "3" * 64)
    c = lineage_of("/a/train.jsonl", "4" * 64)
    assert a["data_sha256"] == b["data_sha256"] != c["data_sha256"]
    assert a["data"]["auto_annotated"]["path"] == "auto/auto_annotated.jsonl"


def test_a_distilled_version_names_the_teacher_targets_it_learned_from_in_its_data_hash():
    common = {"gold_paths": {}, "gold_hashes": {"train": "1" * 64}, "train_sha256": "2" * 64, "annotator_version": "t"}
    plain = lineage(**common)
    distilled = lineage(**common, soft_targets_sha256="5" * 64)
    other = lineage(**common, soft_targets_sha256="6" * 64)
    assert distilled["data"]["teacher_soft_targets"] == {"sha256": "5" * 64, "teacher_version": "t"}
    assert "teacher_soft_targets" not in plain["data"]
    assert len({plain["data_sha256"], distilled["data_sha256"], other["data_sha256"]}) == 3


# --- the champion history ---------------------------------------------------------------------
def moves(*pairs: tuple[str, str]) -> list[ch.Move]:
    return [ch.Move(v, kind) for v, kind in pairs]


def test_rollback_returns_to_the_version_that_served_before():
    history = moves(("1", "bootstrap"), ("2", "gate"), ("3", "gate"))
    assert ch.rollback_target(history, "3") == "2"
    after = [*history, ch.Move("2", ch.ROLLBACK)]
    assert ch.stack(after) == ["1", "2"] and ch.rollback_target(after, "2") == "1"
    assert ch.rollback_target(moves(("1", "bootstrap")), "1") is None


def test_a_move_made_outside_sciner_is_seen_and_rolled_back_to_what_served_before_it():
    history = moves(("1", "bootstrap"), ("2", "gate"), ("1", "rollback"), ("3", "manual"))
    assert ch.stack(history) == ["1", "3"]
    # the UI moved champion 3 -> 2: v2's own tags would say "champion_previous=1"
    assert ch.rollback_target(history, "2") == "3"
    assert ch.with_observed(history, "2")[-1] == ch.Move("2", ch.OBSERVED)
    assert ch.with_observed(history, "3") == history


def test_the_history_tag_round_trips_keeps_the_latest_moves_and_tolerates_garbage():
    many = [ch.Move(str(i), "gate", "t") for i in range(ch.KEEP + 10)]
    back = ch.parse(ch.dump(many))
    assert len(back) == ch.KEEP and back[-1] == many[-1]
    assert ch.parse("not json") == [] and ch.parse(None) == [] and ch.parse('[{"kind": "gate"}]') == []


# --- a quiet console --------------------------------------------------------------------------
def record(name: str, level: int, msg: str, path: str = "/x/y.py") -> logging.LogRecord:
    return logging.LogRecord(name, level, path, 1, msg, None, None)


def test_known_noise_is_dropped_at_its_source_and_nothing_else():
    ort = DropKnown(Rule("", r".", below=logging.WARNING, path="onnxruntime/quantization"))
    quant = "/venv/onnxruntime/quantization/onnx_quantizer.py"
    assert not ort.filter(record("root", logging.INFO, 'Quantization parameters for tensor:"x" not specified', quant))
    assert ort.filter(record("root", logging.WARNING, "a real problem", quant))
    assert ort.filter(record("root", logging.INFO, "someone else's info", "/app/other.py"))
    dtype = DropKnown(Rule("transformers.configuration_utils", r"`torch_dtype` is deprecated"))
    assert not dtype.filter(
        record("transformers.configuration_utils", logging.WARNING, "`torch_dtype` is deprecated! Use `dtype` instead!")
    )
    assert dtype.filter(record("transformers.configuration_utils", logging.WARNING, "another warning"))


def test_install_filters_loggers_not_levels():
    from sciner import quiet

    before = logging.getLogger("transformers.configuration_utils").level
    quiet.install()
    quiet.install()  # idempotent
    logger = logging.getLogger("transformers.configuration_utils")
    assert logger.level == before and sum(isinstance(f, DropKnown) for f in logger.filters) == 1


# --- model references and MLflow input ---------------------------------------------------------
def test_pyfunc_input_of_any_shape_becomes_texts():
    import pandas as pd

    assert input_texts(pd.DataFrame({"text": ["a", "b"]})) == ["a", "b"]
    assert input_texts(pd.DataFrame([{"text": ["a", "b"]}])) == ["a", "b"]  # {"text": [...]} after MLflow
    assert input_texts({"text": ["a"]}) == ["a"] and input_texts(["a", "b"]) == ["a", "b"] and input_texts("a") == ["a"]


def test_a_model_reference_is_a_folder_or_a_registry_uri(tmp_path):
    from sciner.settings import Settings
    from training.model_ref import ModelRefError, resolve_model

    settings = Settings(home=tmp_path)
    assert resolve_model(str(tmp_path / "m"), settings).folder == tmp_path / "m"
    with pytest.raises(ModelRefError, match="neither"):
        resolve_model("models:/sciner", settings)
    dead = settings.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})
    with pytest.raises(ModelRefError, match="unreachable"):
        resolve_model(None, dead)  # default: the serving model, models:/sciner@champion


# --- the CLI's help ---------------------------------------------------------------------------
def test_the_help_shows_flags_as_flags_and_explains_verbose():
    from training.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"]).output
    assert "<bool>" not in top and "Debug logging" in top
    for command in ("train", "pretrain-ner", "adapt-encoder", "bootstrap", "retrain"):
        out = runner.invoke(app, [command, "--help"]).output
        assert "--progress / --no-progress" in out and "<bool>" not in out, command
    predict = runner.invoke(app, ["predict", "--help"]).output
    assert "models:/sciner@champion" in predict
