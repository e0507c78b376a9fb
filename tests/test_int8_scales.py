"""Calibrated activation scales (SCINER_INT8_ACTIVATION_SCALES=calibrated): the int8 model quantizes its
activations with scales fixed at export, so a sentence's logits no longer depend on the batch it is read in."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sciner.model_dir import onnx_path
from training.int8_scales import (
    STATIC_SUFFIX,
    ScaleCalibration,
    calibrate_activation_scales,
    dynamic_quantizers,
    fix_activation_scales,
    quantization_params,
)


def _dynamic_quantize(values: np.ndarray) -> tuple[float, int]:
    """ONNX Runtime's own DynamicQuantizeLinear scale and zero point for ``values``."""
    import onnxruntime as ort

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "scale", "zero"])
    graph = helper.make_graph(
        [node],
        "dql",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(values.shape))],
        [
            helper.make_tensor_value_info("q", TensorProto.UINT8, list(values.shape)),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, []),
            helper.make_tensor_value_info("zero", TensorProto.UINT8, []),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    _, scale, zero = session.run(None, {"x": values})
    return float(scale), int(zero)


@pytest.mark.parametrize(
    "values",
    [[-2.81, 6.29], [-0.17, 24.02], [0.5, 3.0], [-4.0, -1.0], [-1.0, 1.0], [-3.37, 2.44]],
)
def test_the_calibrated_scale_and_zero_point_are_those_dynamic_quantization_computes_for_the_same_range(values):
    array = np.array(values, dtype=np.float32)
    scale, zero = quantization_params(float(array.min()), float(array.max()))
    expected_scale, expected_zero = _dynamic_quantize(array)
    assert scale == pytest.approx(expected_scale, rel=1e-6) and zero == expected_zero


def test_a_range_of_only_zero_gets_a_usable_scale():
    assert quantization_params(0.0, 0.0) == (1.0, 0)


def _folder_like(model_dir, folder):
    """An empty model folder with ``model_dir``'s tokenizer and metadata; its ``onnx/int8`` is the caller's."""
    (folder / "onnx" / "int8").mkdir(parents=True)
    for name in ("tokenizer.json", "sciner.json"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    return folder


@pytest.fixture(scope="module")
def dynamic_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with the int8 graph dynamic quantization makes (activation scales computed per call)."""
    from training.export import quantize_fused

    folder = _folder_like(tiny_model_dir, tmp_path_factory.mktemp("dynamic") / "model")
    quantize_fused(onnx_path(tiny_model_dir, "fp32"), onnx_path(folder, "int8"))
    return folder


def test_the_export_calibrates_the_activation_scales_by_default(tiny_model_dir):
    from sciner.model_dir import read_metadata

    recipe = read_metadata(tiny_model_dir).extra["int8"]
    assert recipe["activation_scales"] == "calibrated" and recipe["calibration"]["sentences"] > 0
    assert recipe["calibration"]["source"] == "training data"  # the text it was trained on, not a settings file
    nodes = onnx.load(str(onnx_path(tiny_model_dir, "int8"))).graph.node
    assert not dynamic_quantizers(onnx.load(str(onnx_path(tiny_model_dir, "int8"))))
    assert any(n.op_type == "MatMulIntegerToFloat" for n in nodes) and any(n.op_type == "QAttention" for n in nodes)


def test_fixing_the_scales_turns_every_dynamic_quantizer_into_a_constant_one(dynamic_model_dir):
    model = onnx.load(str(onnx_path(dynamic_model_dir, "int8")))
    quantizers = dynamic_quantizers(model)
    assert quantizers  # the served int8 graph quantizes its activations per call
    ranges = {n.input[0]: (-1.0, 2.0) for n in quantizers[1:]}  # the first input left out: it stays dynamic

    fixed = fix_activation_scales(model, ranges, fuse=False)

    assert [n.name for n in dynamic_quantizers(fixed)] == [quantizers[0].name]
    static = [n for n in fixed.graph.node if n.name.endswith(STATIC_SUFFIX)]
    assert [n.op_type for n in static] == ["QuantizeLinear"] * len(ranges)
    constants = {i.name: onnx.numpy_helper.to_array(i) for i in fixed.graph.initializer}
    for node in quantizers[1:]:  # the scale and zero point keep their names, now constants
        assert constants[node.output[1]] == pytest.approx(quantization_params(-1.0, 2.0)[0])
        assert constants[node.output[2]] == quantization_params(-1.0, 2.0)[1]
    assert len(dynamic_quantizers(model)) == len(quantizers)  # the original is not modified
    onnx.checker.check_model(fixed)


def _run(model: onnx.ModelProto, sentences: int = 3, pieces: int = 12) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(1000, 2000, size=(sentences, pieces))
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in {i.name for i in session.get_inputs()}:
        feed["token_type_ids"] = np.zeros_like(ids)
    return session.run(None, feed)[0]


def test_each_integer_matmul_with_a_fixed_input_scale_runs_as_one_fused_kernel(dynamic_model_dir):
    model = onnx.load(str(onnx_path(dynamic_model_dir, "int8")))
    ranges = {n.input[0]: (-3.0, 5.0) for n in dynamic_quantizers(model)}
    unfused, fused = fix_activation_scales(model, ranges, fuse=False), fix_activation_scales(model, ranges)

    def count(graph: onnx.ModelProto, op_type: str) -> int:
        return sum(n.op_type == op_type for n in graph.graph.node)

    assert count(unfused, "MatMulInteger") > 0 and count(fused, "MatMulInteger") == 0
    assert count(fused, "MatMulIntegerToFloat") == count(unfused, "MatMulInteger")
    assert count(fused, "Cast") < count(unfused, "Cast") and count(fused, "Add") < count(unfused, "Add")  # biases in
    np.testing.assert_allclose(_run(fused), _run(unfused), atol=1e-4)  # the same function, fewer kernels
    assert count(fix_activation_scales(model, {}), "MatMulInteger") == count(model, "MatMulInteger")  # none fixed


def _logits(folder, sentences, max_windows: int):
    from sciner.predictor import Predictor
    from sciner.settings import Settings

    settings = Settings(intra_op_threads=1, batch_max_windows=max_windows)
    return [r.logits for r in Predictor.from_model_dir(folder, settings, "int8").record_logits(sentences)]


def test_calibrated_int8_reads_a_sentence_alike_alone_and_in_a_batch(dynamic_model_dir, tmp_path, seed_train, seed_dev):
    from sciner.settings import Settings

    folder = _folder_like(dynamic_model_dir, tmp_path / "model")
    int8 = onnx_path(folder, "int8")
    int8.write_bytes(onnx_path(dynamic_model_dir, "int8").read_bytes())
    fixed = calibrate_activation_scales(int8, folder, ScaleCalibration(seed_train[:64], Settings(intra_op_threads=1)))

    assert fixed == len(dynamic_quantizers(onnx.load(str(onnx_path(dynamic_model_dir, "int8")))))
    assert not dynamic_quantizers(onnx.load(str(int8)))
    assert not list(folder.glob("onnx/int8/*.calibrated.onnx"))  # written beside, then renamed over

    def batch_gap(model_dir) -> float:
        batched, alone = _logits(model_dir, seed_dev, 64), _logits(model_dir, seed_dev, 1)
        return max(float(np.abs(a - b).max()) for a, b in zip(batched, alone, strict=True))

    dynamic_gap, calibrated_gap = batch_gap(dynamic_model_dir), batch_gap(folder)
    assert dynamic_gap > 1e-3  # per-batch scales: the neighbours move a sentence's logits
    assert calibrated_gap < 1e-4, calibrated_gap  # fixed scales: they do not
    # and the calibrated model computes what the dynamic one does, up to int8 rounding
    dynamic, calibrated = _logits(dynamic_model_dir, seed_dev, 1), _logits(folder, seed_dev, 1)
    mean_gap = np.mean([np.abs(a - b).mean() for a, b in zip(dynamic, calibrated, strict=True)])
    assert mean_gap < 0.1, mean_gap


def test_scales_are_calibrated_only_when_asked_and_only_with_text_to_read(tmp_path, caplog):
    from dataclasses import replace

    from sciner.io.jsonl import read_jsonl
    from sciner.settings import Settings
    from tests.conftest import SEED_TRAIN
    from training.int8_scales import scale_calibration_for

    assert scale_calibration_for(Settings(int8_activation_scales="dynamic")) is None
    missing = Settings(int8_activation_scales="calibrated", gold_train_path=tmp_path / "absent.jsonl")
    assert scale_calibration_for(missing) is None and "no calibration text" in caplog.text
    asked = Settings(int8_activation_scales="calibrated", gold_train_path=SEED_TRAIN, int8_calibration_sentences=8)
    calibration = scale_calibration_for(asked)
    assert calibration is not None and len(calibration.sentences) == 8

    trained_on = [replace(s, doc_id=f"t{i}") for i, s in enumerate(read_jsonl(SEED_TRAIN)[:20])]
    caplog.clear()
    from_training = scale_calibration_for(missing.model_copy(update={"int8_calibration_sentences": 5}), trained_on)
    assert from_training is not None and [s.doc_id for s in from_training.sentences] == ["t0", "t4", "t8", "t12", "t16"]
    assert "no calibration text" not in caplog.text  # the training text, so the missing file is not read
