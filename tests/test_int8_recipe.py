"""The int8 export can keep each layer's feed-forward output projection fp32 (SCINER_INT8_FP32_FFN_OUTPUT) or
smooth it first (SmoothQuant, SCINER_INT8_SMOOTH_ALPHA); bench/quantization.py reads every recipe side by side."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from sciner.model_dir import onnx_path
from training.export import quantize_fused
from training.int8_recipe import (
    SMOOTH_SUFFIX,
    activation_maxima,
    evenly_spaced,
    ffn_output_nodes,
    smooth_graph,
    smoothing_scales,
)


def _graph_with_a_feed_forward_block() -> onnx.ModelProto:
    """x -> MatMul(up) -> BiasGelu -> MatMul(down) -> Add -> LayerNorm -> MatMul(classifier) -> Add -> logits."""
    shapes = {"w_up": (4, 8), "b_up": (8,), "w_down": (8, 4), "w_cls": (4, 3), "b": (4,), "b_cls": (3,)}
    inits = [
        helper.make_tensor(name, TensorProto.FLOAT, shape, np.zeros(shape, np.float32).ravel())
        for name, shape in shapes.items()
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w_up"], ["up"], name="up"),
        helper.make_node("BiasGelu", ["up", "b_up"], ["act"], name="gelu", domain="com.microsoft"),
        helper.make_node("MatMul", ["act", "w_down"], ["down"], name="down"),
        helper.make_node("Add", ["down", "b"], ["res"], name="residual"),
        helper.make_node("LayerNormalization", ["res", "b", "b"], ["norm"], name="norm"),
        helper.make_node("MatMul", ["norm", "w_cls"], ["cls"], name="classifier"),
        helper.make_node("Add", ["cls", "b_cls"], ["logits"], name="cls_bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "ffn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    return helper.make_model(graph)


def test_the_feed_forward_outputs_are_the_matmuls_that_read_a_gelu():
    assert ffn_output_nodes(_graph_with_a_feed_forward_block()) == ["down"]


def _op_types(path) -> dict[str, str]:
    return {n.name: n.op_type for n in onnx.load(str(path)).graph.node}


def test_an_int8_model_keeps_one_fp32_feed_forward_output_per_layer_when_asked(tiny_model_dir, tmp_path, seed_dev):
    from sciner.model_dir import read_metadata
    from sciner.predictor import Predictor
    from sciner.settings import Settings

    fp32 = onnx_path(tiny_model_dir, "fp32")
    layers = json.loads((tiny_model_dir / "hf" / "config.json").read_text())["num_hidden_layers"]
    wanted = ffn_output_nodes(onnx.load(str(fp32)))
    assert len(wanted) == layers

    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    for name in ("tokenizer.json", "sciner.json"):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    kept = quantize_fused(fp32, onnx_path(folder, "int8"), fp32_ffn_output=True)

    assert kept == wanted
    mixed, full = _op_types(onnx_path(folder, "int8")), _op_types(onnx_path(tiny_model_dir, "int8"))
    assert all(mixed[name] == "MatMul" for name in kept)  # left fp32 ...
    assert sum(t == "MatMul" for t in full.values()) < sum(t == "MatMul" for t in mixed.values())  # ... not in full
    assert any(t in ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention") for t in mixed.values())  # rest int8
    assert read_metadata(folder).labels == read_metadata(tiny_model_dir).labels
    # the fp32 projections bring the int8 model's logits nearer the fp32 model's
    settings = Settings(intra_op_threads=1)
    fp32_logits, full_logits, mixed_logits = (
        Predictor.from_model_dir(model, settings, variant).record_logits(seed_dev)
        for model, variant in ((tiny_model_dir, "fp32"), (tiny_model_dir, "int8"), (folder, "int8"))
    )

    def mean_gap(logits):
        return np.mean([np.abs(a.logits - b.logits).mean() for a, b in zip(fp32_logits, logits, strict=True)])

    assert mean_gap(mixed_logits) < mean_gap(full_logits), (mean_gap(mixed_logits), mean_gap(full_logits))


def test_the_quantization_benchmark_reads_every_engine_batched_and_alone(tiny_model_dir, tmp_path, monkeypatch):
    import bench.common
    import bench.quantization
    from tests.conftest import SEED_DEV

    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    from tests.conftest import SEED_TRAIN

    argv = ["bench/quantization.py", "--model", str(tiny_model_dir), "--data", str(SEED_DEV)]
    argv += ["--calibration", str(SEED_TRAIN), "--calibration-sentences", "16"]
    monkeypatch.setattr(sys, "argv", [*argv, "--sentences", "4", "--repeats", "1", "--name", "q"])

    bench.quantization.main()

    result = json.loads((tmp_path / "q.json").read_text())
    rows = {r["engine"]: r for r in result["rows"]}
    smoothed = "int8, smoothed feed-forward outputs (alpha 0.5)"
    calibrated, dynamic = "int8, calibrated activation scales", "int8, dynamic activation scales"
    assert set(rows) == {"int8 as served", dynamic, "int8, fp32 feed-forward outputs", smoothed, calibrated, "fp32"}
    assert rows["fp32"]["sentences_changed"] == 0.0  # fp32 answers never depend on their batch
    assert rows[calibrated]["sentences_changed"] == 0.0  # nor int8's with its scales fixed
    assert rows["int8 as served"]["sentences_changed"] == 0.0  # which the export now does by default
    for row in rows.values():
        assert row["batched"]["micro_f1_fitted"] >= row["batched"]["micro_f1_unbiased"]
        assert set(row["speed"]) == {"one_text_per_call", "batched"} and min(row["speed"].values()) > 0
    assert "| int8, fp32 feed-forward outputs |" in (tmp_path / "q.md").read_text()


def test_smoothing_scales_balance_activation_and_weight_ranges():
    activation_max = np.array([4.0, 1.0, 0.0])
    weight = np.array([[1.0, -0.5], [0.0, -4.0], [2.0, 0.0]])  # row maxima 1, 4, 2
    # s = max|x|^0.5 / max|w|^0.5; a channel that never fired keeps 1
    np.testing.assert_allclose(smoothing_scales(activation_max, weight, 0.5), [2.0, 0.5, 1.0])
    np.testing.assert_allclose(smoothing_scales(activation_max, weight, 1.0), [4.0, 1.0, 1.0])


def test_an_even_sample_spreads_over_the_whole_list():
    assert evenly_spaced(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert evenly_spaced([1, 2], 5) == [1, 2]


def test_smoothing_leaves_the_fp32_function_unchanged(tiny_model_dir, seed_train):
    import onnxruntime as ort

    from sciner.settings import Settings

    model = onnx.load(str(onnx_path(tiny_model_dir, "fp32")))
    nodes = ffn_output_nodes(model)
    maxima = activation_maxima(model, nodes, tiny_model_dir, seed_train[:16], Settings(intra_op_threads=1))
    assert set(maxima) == set(nodes) and all(m.ndim == 1 and m.max() > 0 and m.min() >= 0 for m in maxima.values())

    smoothed = smooth_graph(model, maxima, 0.5)

    assert sum(n.op_type == "Mul" and n.name.endswith(SMOOTH_SUFFIX) for n in smoothed.graph.node) == len(nodes)
    ids = np.array([[101, 2057, 3345, 14324, 2006, 2061, 102]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    cpu = ["CPUExecutionProvider"]
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=cpu) for m in (model, smoothed)]
    logits = [s.run(None, {i.name: feed[i.name] for i in s.get_inputs()})[0] for s in sessions]
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-4)
    assert len(model.graph.node) == len(smoothed.graph.node) - len(nodes)  # the original is not modified


def test_without_calibration_text_the_export_quantizes_unsmoothed(tmp_path, caplog):
    from sciner.settings import Settings
    from training.int8_recipe import smoothing_for

    missing = Settings(int8_smooth_alpha=0.5, gold_train_path=tmp_path / "absent.jsonl")
    assert smoothing_for(missing) is None and "no calibration text" in caplog.text
    assert smoothing_for(Settings(int8_smooth_alpha=0.0)) is None
    assert smoothing_for(Settings(int8_smooth_alpha=0.5, int8_fp32_ffn_output=True)) is None  # fp32 wins
    from tests.conftest import SEED_TRAIN

    smoothing = smoothing_for(Settings(int8_smooth_alpha=0.5, gold_train_path=SEED_TRAIN, int8_calibration_sentences=8))
    assert smoothing is not None and smoothing.alpha == 0.5 and len(smoothing.sentences) == 8
