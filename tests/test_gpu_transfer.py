"""A checkpoint crosses the lent GPU machine's size limit as fp16 parts and comes back a working model folder."""

from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bench import gpu_transfer
from sciner.predictor import Predictor


def test_an_encoder_travels_in_fp16_and_grows_back_to_fp32_keeping_its_integer_tensors(tmp_path):
    src = tmp_path / "encoder"
    src.mkdir()
    weights = {"w": torch.randn(4, 3), "embeddings.position_ids": torch.arange(8).unsqueeze(0)}
    save_file(weights, str(src / gpu_transfer.WEIGHTS))
    (src / "config.json").write_text("{}")

    gpu_transfer.shrink(src, tmp_path / "carried")
    gpu_transfer.grow(tmp_path / "carried", tmp_path / "there")

    carried = load_file(str(tmp_path / "carried" / gpu_transfer.HALF))
    assert carried["w"].dtype == torch.float16
    grown = load_file(str(tmp_path / "there" / gpu_transfer.WEIGHTS))
    assert grown["w"].dtype == torch.float32
    assert torch.allclose(grown["w"], weights["w"], atol=1e-3)
    assert torch.equal(grown["embeddings.position_ids"], weights["embeddings.position_ids"])
    assert (tmp_path / "there" / "config.json").is_file()


def test_a_trained_model_comes_back_in_parts_under_the_size_limit_and_predicts_as_before(
    tiny_model_dir, seed_dev, tmp_path, monkeypatch
):
    monkeypatch.setattr(gpu_transfer, "PART_BYTES", 4 * 1024 * 1024)
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"gpu": "test"}))

    gpu_transfer.pack(tiny_model_dir, tmp_path / "out", [run])
    parts = sorted((tmp_path / "out").glob(f"{gpu_transfer.PART}*"))
    gpu_transfer.unpack(tmp_path / "out", tmp_path / "back")

    assert len(parts) > 2 and all(p.stat().st_size <= 4 * 1024 * 1024 for p in parts)
    assert json.loads((tmp_path / "back" / "gpu-run" / "run.json").read_text()) == {"gpu": "test"}
    assert not (tmp_path / "back" / "onnx").exists()  # exported again where the model is scored
    before = Predictor.from_model_dir(tiny_model_dir, variant="fp32").record_logits(seed_dev[:8])
    after = Predictor.from_model_dir(tmp_path / "back", variant="fp32").record_logits(seed_dev[:8])
    for a, b in zip(before, after, strict=True):
        assert np.abs(a.logits - b.logits).max() < 0.05
        assert (a.logits.argmax(-1) == b.logits.argmax(-1)).mean() > 0.95
