"""Calibrated activation scales for the int8 model (``SCINER_INT8_ACTIVATION_SCALES=calibrated``).

ONNX Runtime's dynamic int8 quantizes the input of every MatMul and QAttention with one scale and zero point
computed at each call over the whole batch tensor (``DynamicQuantizeLinear``): a sentence's logits then depend
on the sentences batched beside it, and its entities can change with its neighbours in an adaptive batch
(docs/quality.md, session 30: 3-6 % of dev sentences tagged differently read alone than batched). Calibrated
scales fix each of those inputs' scale and zero point once, at export, from the range the input takes over
calibration text (the training text, evenly spaced, read by the shared predictor): each
``DynamicQuantizeLinear`` becomes a ``QuantizeLinear`` with constant scale and zero point, the int8 kernels
after it stay the same, and a sentence's answer no longer depends on its batch. Activations beyond the
calibrated range saturate.

:func:`quantization_params`, :func:`dynamic_quantizers`, :func:`fix_activation_scales` and
:func:`fuse_integer_matmuls` are pure (numpy and ONNX protos); :func:`activation_ranges` and
:func:`calibrate_activation_scales` run ONNX Runtime and read and write files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

    from sciner.records import Sentence
    from sciner.settings import Settings

log = logging.getLogger(__name__)

DYNAMIC_QUANTIZER = "DynamicQuantizeLinear"
STATIC_SUFFIX = "_calibrated"
MS_DOMAIN = "com.microsoft"
UINT8_MAX = 255


@dataclass(frozen=True)
class ScaleCalibration:
    """The text the activation ranges are read on, and the settings the predictor reads it with."""

    sentences: Sequence[Sentence]
    settings: Settings


def quantization_params(low: float, high: float) -> tuple[float, int]:
    """uint8 scale and zero point for values in ``[low, high]``, as ``DynamicQuantizeLinear`` computes them from
    a tensor's minimum and maximum: the range widened to hold 0, the zero point rounded half to even and
    saturated, in float32. A range of only 0 gets scale 1. Pure."""
    low32, high32 = np.float32(min(low, 0.0)), np.float32(max(high, 0.0))
    if high32 == low32:
        return 1.0, 0
    scale = (high32 - low32) / np.float32(UINT8_MAX)  # float32 arithmetic throughout, as the operator's
    return float(scale), int(np.clip(np.rint(-low32 / scale), 0, UINT8_MAX))


def dynamic_quantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The graph's ``DynamicQuantizeLinear`` nodes, in graph order. Pure."""
    return [n for n in model.graph.node if n.op_type == DYNAMIC_QUANTIZER]


def fix_activation_scales(
    model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]], fuse: bool = True
) -> onnx.ModelProto:
    """A copy of ``model`` where each ``DynamicQuantizeLinear`` whose input has a range in ``ranges`` (tensor name ->
    (min, max)) is a ``QuantizeLinear`` with that range's constant scale and zero point, under the names its
    scale and zero-point outputs had, so every node that read them reads the constants; the integer MatMuls
    that read those inputs are then fused (:func:`fuse_integer_matmuls`) unless ``fuse`` is off. Pure."""
    import onnx
    from onnx import helper, numpy_helper

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph = fixed.graph
    fixed_scales: dict[str, str] = {}  # zero point -> scale of each input fixed here
    for position in reversed(range(len(graph.node))):
        node = graph.node[position]
        if node.op_type != DYNAMIC_QUANTIZER or node.input[0] not in ranges:
            continue
        quantized, scale_name, zero_name = node.output
        scale, zero = quantization_params(*ranges[node.input[0]])
        fixed_scales[zero_name] = scale_name
        graph.initializer.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name))
        graph.initializer.append(numpy_helper.from_array(np.array(zero, dtype=np.uint8), zero_name))
        static = helper.make_node(
            "QuantizeLinear", [node.input[0], scale_name, zero_name], [quantized], name=f"{node.name}{STATIC_SUFFIX}"
        )
        del graph.node[position]
        graph.node.insert(position, static)
    return fuse_integer_matmuls(fixed, fixed_scales) if fuse else fixed


def fuse_integer_matmuls(model: onnx.ModelProto, input_scales: Mapping[str, str]) -> onnx.ModelProto:
    """Fuse each ``MatMulInteger -> Cast -> Mul(a_scale * b_scale)`` (and the bias ``Add`` after it) whose input's
    zero point is a key of ``input_scales`` (zero point -> scale, both constants) into one ``MatMulIntegerToFloat``,
    in place; returns ``model``. Pure.

    ONNX Runtime makes that fusion itself only while the scale product is computed at run time: once ``a_scale``
    is a constant, constant folding turns ``Mul(a_scale, b_scale)`` into an initializer first and the chain
    runs as four kernels (separate ``Cast`` and ``Mul`` passes over every product; docs/benchmarks.md)."""
    import onnx
    from onnx import helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def only_reader(tensor: str, op_type: str) -> onnx.NodeProto | None:
        found = readers.get(tensor, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    fused: dict[str, onnx.NodeProto] = {}  # a MatMulInteger's output -> the node replacing its chain
    removed: set[str] = set()  # first outputs of the nodes fused away (a node's outputs name it uniquely)
    for matmul in graph.node:
        if matmul.op_type != "MatMulInteger" or len(matmul.input) < 3 or matmul.input[2] not in input_scales:
            continue
        cast = only_reader(matmul.output[0], "Cast")
        rescale = cast and only_reader(cast.output[0], "Mul")
        if rescale is None:
            continue
        product = producer.get(next((i for i in rescale.input if i != cast.output[0]), ""))
        a_scale = input_scales[matmul.input[2]]
        if product is None or product.op_type != "Mul" or a_scale not in product.input:
            continue
        b_scale = next(i for i in product.input if i != a_scale)
        if b_scale not in initializers or len(readers[product.output[0]]) != 1:
            continue
        inputs = [matmul.input[0], matmul.input[1], a_scale, b_scale, matmul.input[2]]
        inputs.append(matmul.input[3] if len(matmul.input) > 3 else "")
        output, absorbed = rescale.output[0], [matmul, cast, rescale, product]
        add = only_reader(rescale.output[0], "Add")
        bias = add and next((i for i in add.input if i != rescale.output[0]), None)
        if add is not None and bias in initializers and len(initializers[bias].dims) == 1:
            inputs.append(bias)
            output = add.output[0]
            absorbed.append(add)
        fused[matmul.output[0]] = helper.make_node(
            "MatMulIntegerToFloat", inputs, [output], name=f"{matmul.name}{STATIC_SUFFIX}", domain=MS_DOMAIN
        )
        removed.update(n.output[0] for n in absorbed)
    if not fused:
        return model
    nodes = []
    for node in graph.node:
        if node.output[0] in fused or node.output[0] not in removed:
            kept = onnx.NodeProto()  # a copy: the originals go with the list they are deleted from
            kept.CopyFrom(fused.get(node.output[0], node))
            nodes.append(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return model


def activation_ranges(
    model: onnx.ModelProto, model_dir: Path, sentences: Sequence[Sentence], settings: Settings
) -> dict[str, tuple[float, float]]:
    """(min, max) over ``sentences`` (real word pieces only) of each dynamically quantized input of the int8
    ``model``, read by a predictor with ``model_dir``'s tokenizer and metadata: as the service reads them."""
    from training.onnx_probe import probe_tensors

    ranges: dict[str, tuple[float, float]] = {}

    def observe(tensor: str, values: np.ndarray) -> None:
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        if tensor in ranges:
            low, high = min(low, ranges[tensor][0]), max(high, ranges[tensor][1])
        ranges[tensor] = (low, high)

    tensors = [n.input[0] for n in dynamic_quantizers(model)]
    probe_tensors(model, tensors, model_dir, sentences, settings, observe)
    return ranges


def calibrate_activation_scales(path: Path, model_dir: Path, calibration: ScaleCalibration) -> int:
    """Rewrite the int8 graph at ``path`` (of ``model_dir``) with calibrated activation scales; returns how many
    inputs were fixed. The file is replaced whole (written beside it, then renamed)."""
    import onnx

    model = onnx.load(str(path))
    ranges = activation_ranges(model, model_dir, calibration.sentences, calibration.settings)
    fixed = fix_activation_scales(model, ranges)
    left = len(dynamic_quantizers(fixed))
    if left:  # an input the text never reached (no real piece): it keeps its dynamic scale
        log.warning("int8: %d of %d activation scales left dynamic", left, len(dynamic_quantizers(model)))
    staged = path.with_suffix(".calibrated.onnx")
    onnx.save(fixed, str(staged))
    staged.replace(path)
    return len(ranges)


def scale_calibration_for(settings: Settings, train: Sequence[Sentence] | None = None) -> ScaleCalibration | None:
    """The settings' activation-scale calibration on :func:`training.int8_recipe.calibration_text` (of ``train``
    when given). None: dynamic scales, or no calibration text (with a warning)."""
    from training.int8_recipe import calibration_text

    if settings.int8_activation_scales != "calibrated":
        return None
    text = calibration_text(settings, "with dynamic activation scales", train)
    return None if text is None else ScaleCalibration(text, settings)
