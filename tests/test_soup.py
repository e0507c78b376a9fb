"""Model soup: the weights are the average of the members', incompatible models are refused with a
message, and a soup is a whole model folder the predictor serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from sciner.model_dir import read_metadata, sha256_file, write_metadata
from sciner.predictor import Predictor
from training.cli import app
from training.soup import (
    Member,
    SoupError,
    average_state_dicts,
    check_members,
    make_soup,
    read_member,
    seed_conflict,
)

WEIGHTS = Path("hf") / "model.safetensors"


def test_the_average_of_weights_is_computed_per_tensor_and_keeps_each_dtype():
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([1.0], dtype=torch.float16)}
    c = {"w": torch.tensor([2.0, 1.0]), "b": torch.tensor([2.0], dtype=torch.float16)}
    avg = average_state_dicts([a, b, c])
    assert avg["w"].tolist() == [2.0, 3.0]
    assert avg["b"].dtype == torch.float16 and avg["b"].tolist() == [1.0]


def test_weights_of_another_name_or_shape_are_refused():
    a = {"w": torch.zeros(2)}
    with pytest.raises(SoupError, match="other weights"):
        average_state_dicts([a, {"v": torch.zeros(2)}])
    with pytest.raises(SoupError, match=r"w is \(3,\), not \(2,\)"):
        average_state_dicts([a, {"w": torch.zeros(3)}])


def _member(tiny_model_dir: Path, **changes) -> Member:
    member = read_member(tiny_model_dir)
    return Member(
        Path(changes.pop("folder", "other")),
        changes.pop("meta", member.meta),
        changes.pop("config", member.config),
        changes.pop("vocab", member.vocab),
        member.checkpoint,
        "other",
    )


def test_members_must_share_labels_architecture_and_vocabulary(tiny_model_dir):
    lead = read_member(tiny_model_dir)
    check_members([lead, _member(tiny_model_dir, config={**lead.config, "_name_or_path": "elsewhere"})])
    with pytest.raises(SoupError, match="at least two"):
        check_members([lead])
    meta = read_metadata(tiny_model_dir)
    meta.labels = [*meta.labels, "B-Extra"]
    with pytest.raises(SoupError, match="has labels"):
        check_members([lead, _member(tiny_model_dir, meta=meta)])
    with pytest.raises(SoupError, match=r"another architecture .*num_hidden_layers"):
        check_members([lead, _member(tiny_model_dir, config={**lead.config, "num_hidden_layers": 2})])
    with pytest.raises(SoupError, match="vocabulary"):
        check_members([lead, _member(tiny_model_dir, vocab={**lead.vocab, "zzz-new": 10**6})])


def _trained_with(tiny_model_dir: Path, name: str, base_model: str, seed: int | None) -> Member:
    meta = read_metadata(tiny_model_dir)
    meta.base_model, meta.training = base_model, {**meta.training, "seed": seed}
    return Member(Path(name), meta, {}, {}, Path(name), name)


def test_members_fine_tuned_from_one_encoder_with_different_seeds_are_named_as_a_risk(tiny_model_dir):
    s42 = _trained_with(tiny_model_dir, "a", "/here/minilm/model", 42)
    assert seed_conflict([s42, _trained_with(tiny_model_dir, "b", "/here/minilm/model", 42)]) is None
    # a model that continued another one's training started from that model, not from the encoder
    assert seed_conflict([s42, _trained_with(tiny_model_dir, "b", "var/models/a/hf", 43)]) is None
    assert seed_conflict([s42, _trained_with(tiny_model_dir, "a-soup", "/here/minilm/model", None)]) is None
    # the same encoder installed elsewhere (a champion trained on another machine) is still the same encoder
    warning = seed_conflict([s42, _trained_with(tiny_model_dir, "c", "/app/venv/minilm/model", 43)])
    assert warning is not None and "a (seed 42) and c (seed 43)" in warning and "SCINER_SEED" in warning


def test_a_soup_of_two_seeds_is_still_made_but_warns_and_records_each_members_seed(tiny_model_dir, tmp_path, caplog):
    lead = _shifted_copy(tiny_model_dir, tmp_path / "lead", 0.0)
    other = _shifted_copy(tiny_model_dir, tmp_path / "other", 0.5)
    for folder, seed in ((lead, 42), (other, 43)):
        meta = read_metadata(folder)
        meta.training = {**meta.training, "seed": seed}
        write_metadata(folder, meta)
    with caplog.at_level("WARNING", logger="sciner.soup"):
        out = make_soup([lead, other], tmp_path / "soup")
    assert "different seeds" in caplog.text
    assert [m["seed"] for m in read_metadata(out).training["soup"]["members"]] == [42, 43]


def _shifted_copy(src: Path, dst: Path, shift: float) -> Path:
    """Another fine-tuned model of the same architecture: ``src`` with every float weight moved by ``shift``."""
    shutil.copytree(src, dst)
    state = load_file(dst / WEIGHTS)
    save_file({k: v + shift if v.is_floating_point() else v for k, v in state.items()}, dst / WEIGHTS)
    meta = read_metadata(dst)
    meta.case_markers = None if meta.case_markers else [1, 2, 3]  # reads input otherwise than the lead
    write_metadata(dst, meta)
    return dst


def test_a_soup_folder_holds_the_averaged_weights_the_leads_reading_and_its_lineage(tiny_model_dir, tmp_path):
    other = _shifted_copy(tiny_model_dir, tmp_path / "other", 0.5)
    out = make_soup([tiny_model_dir, other], tmp_path / "soup")

    lead_state, other_state, soup_state = (load_file(p / WEIGHTS) for p in (tiny_model_dir, other, out))
    for name, tensor in soup_state.items():
        expected = (lead_state[name].float() + other_state[name].float()) / 2
        assert torch.allclose(tensor.float(), expected.to(tensor.dtype).float()), name
    meta, lead_meta = read_metadata(out), read_metadata(tiny_model_dir)
    assert meta.labels == lead_meta.labels and meta.case_markers == lead_meta.case_markers
    members = meta.training["soup"]["members"]
    assert [m["folder"] for m in members] == [str(tiny_model_dir), str(other)]
    assert members[1]["weights_sha256"] == sha256_file(other / WEIGHTS)
    assert not (out / "onnx").exists() and not list(tmp_path.glob(".soup*"))


def test_a_soup_of_a_model_with_itself_predicts_exactly_as_the_model(tiny_model_dir, tmp_path):
    from tests.conftest import SEED_DEV

    out = tmp_path / "self-soup"
    result = CliRunner().invoke(
        app, ["soup", str(tiny_model_dir), str(tiny_model_dir), "--out", str(out), "--dev", str(SEED_DEV)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dev"]["micro_f1"] == pytest.approx(read_metadata(tiny_model_dir).metrics["dev"]["micro_f1"])
    texts = ["We fine-tune BERT on SQuAD with a learning rate of 2e-5 and report 84.6 accuracy."]
    ours = Predictor.from_model_dir(out, variant="fp32").predict_texts(texts)[0].entities
    theirs = Predictor.from_model_dir(tiny_model_dir, variant="fp32").predict_texts(texts)[0].entities
    assert [(e.start, e.end, e.label) for e in ours] == [(e.start, e.end, e.label) for e in theirs]
    assert np.allclose([e.score for e in ours], [e.score for e in theirs], atol=1e-4)


def test_the_cli_refuses_a_single_model_or_writing_over_a_member(tiny_model_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["soup", str(tiny_model_dir), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "at least two" in result.output
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    result = runner.invoke(app, ["soup", str(tiny_model_dir), str(copy), "--out", str(copy)])
    assert result.exit_code == 2 and "one of the models to average" in result.output
    assert (copy / WEIGHTS).is_file()
