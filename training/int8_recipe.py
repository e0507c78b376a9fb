"""How the export treats the feed-forward output projections before dynamic int8 quantization.

Each layer's feed-forward output projection is the MatMul that reads a GELU's output (:func:`ffn_output_nodes`,
found by structure, so BERT and MPNet alike). Two recipes: keep them fp32 (``SCINER_INT8_FP32_FFN_OUTPUT``), or
smooth them (``SCINER_INT8_SMOOTH_ALPHA``), SmoothQuant (Xiao et al., 2023):

Each layer's feed-forward output projection reads the GELU's output, whose channels differ widely in range
(a few reach 20+ while most stay under 2): one int8 scale per batch tensor rounds the quiet channels to a few
steps. SmoothQuant moves part of that range into the weights, exactly: the input's channel ``j`` is divided by
``s_j`` (a ``Mul`` node before the MatMul) and the weight's row ``j`` multiplied by it, so the fp32 product is
unchanged, and ``s_j = max|x_j|^alpha / max|w_j|^(1 - alpha)`` evens out what int8 then has to cover in both.
The maxima ``max|x_j|`` come from running the fp32 graph over calibration sentences.

:func:`ffn_output_nodes`, :func:`smoothing_scales` and :func:`smooth_graph` are pure (numpy and ONNX protos);
:func:`activation_maxima` and :func:`smooth_ffn_output` run ONNX Runtime (through :mod:`training.onnx_probe`) and
read and write files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

    from sciner.records import Sentence
    from sciner.settings import Settings

log = logging.getLogger(__name__)

SMOOTH_SUFFIX = "_smooth"
GELU_OPS = frozenset({"Gelu", "BiasGelu", "FastGelu"})  # what ORT's fusions make of a feed-forward activation


@dataclass(frozen=True)
class Smoothing:
    """SmoothQuant of the feed-forward outputs: migration strength and the text its activation maxima are read on."""

    alpha: float
    sentences: Sequence[Sentence]
    settings: Settings


def ffn_output_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes that read a GELU's output: each layer's feed-forward output projection. Pure."""
    producer = {out: node for node in model.graph.node for out in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and getattr(producer.get(node.input[0]), "op_type", None) in GELU_OPS
    ]


def smoothing_scales(activation_max: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """Per input channel ``s_j = max|x_j|^alpha / max_k |w_jk|^(1 - alpha)`` for a MatMul ``x @ w``. Pure.

    Channels that never fired or whose weight row is zero keep scale 1 (nothing to move)."""
    weight_max = np.abs(weight).max(axis=1)
    usable = (activation_max > 0) & (weight_max > 0)
    scales = np.ones_like(activation_max, dtype=np.float32)
    scales[usable] = activation_max[usable] ** alpha / weight_max[usable] ** (1 - alpha)
    return scales.astype(np.float32)


def smooth_graph(model: onnx.ModelProto, maxima: dict[str, np.ndarray], alpha: float) -> onnx.ModelProto:
    """A copy of ``model`` where each MatMul named in ``maxima`` (node name -> per-channel ``max|x|`` of its
    input) reads its input divided by the smoothing scales and holds weights multiplied by them. Pure."""
    import onnx
    from onnx import helper, numpy_helper

    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(model)
    graph = smoothed.graph
    initializers = {i.name: i for i in graph.initializer}
    for position in reversed([i for i, n in enumerate(graph.node) if n.name in maxima]):
        node = graph.node[position]
        weight_init = initializers[node.input[1]]
        weight = numpy_helper.to_array(weight_init)
        scales = smoothing_scales(maxima[node.name], weight, alpha)
        weight_init.CopyFrom(numpy_helper.from_array((weight * scales[:, None]).astype(weight.dtype), weight_init.name))
        inverse = numpy_helper.from_array((1.0 / scales).astype(np.float32), f"{node.name}{SMOOTH_SUFFIX}_inverse")
        graph.initializer.append(inverse)
        divided = f"{node.input[0]}{SMOOTH_SUFFIX}"
        mul = helper.make_node("Mul", [node.input[0], inverse.name], [divided], name=f"{node.name}{SMOOTH_SUFFIX}")
        node.input[0] = divided
        graph.node.insert(position, mul)
    return smoothed


def activation_maxima(
    model: onnx.ModelProto, nodes: Sequence[str], model_dir: Path, sentences: Sequence[Sentence], settings: Settings
) -> dict[str, np.ndarray]:
    """Per-channel ``max|x|`` of each named MatMul's input over ``sentences`` (real word pieces), read through the
    fp32 ``model`` by a predictor with ``model_dir``'s tokenizer and metadata: as the service reads them."""
    from training.onnx_probe import probe_tensors

    by_name = {n.name: n for n in model.graph.node}
    readers: dict[str, list[str]] = {}
    for name in nodes:
        readers.setdefault(by_name[name].input[0], []).append(name)
    maxima: dict[str, np.ndarray] = {}

    def observe(tensor: str, values: np.ndarray) -> None:
        channel_max = np.abs(values).max(axis=0)
        for name in readers[tensor]:
            maxima[name] = np.maximum(maxima[name], channel_max) if name in maxima else channel_max

    probe_tensors(model, list(readers), model_dir, sentences, settings, observe)
    return maxima


def smooth_ffn_output(src: Path, dst: Path, model_dir: Path, smoothing: Smoothing) -> list[str]:
    """Write ``src`` (an fp32 graph of ``model_dir``) to ``dst`` with its feed-forward outputs smoothed; returns
    the smoothed MatMuls. The fp32 function is unchanged; only what int8 makes of it differs."""
    import onnx

    model = onnx.load(str(src))
    nodes = ffn_output_nodes(model)
    maxima = activation_maxima(model, nodes, model_dir, smoothing.sentences, smoothing.settings)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(smooth_graph(model, maxima, smoothing.alpha), str(dst))
    return nodes


def evenly_spaced(sentences: Sequence[Sentence], count: int) -> list[Sentence]:
    """Up to ``count`` sentences spread evenly over ``sentences`` (every document's share, in order). Pure."""
    if len(sentences) <= count:
        return list(sentences)
    step = len(sentences) / count
    return [sentences[int(i * step)] for i in range(count)]


def calibration_text(
    settings: Settings, purpose: str, train: Sequence[Sentence] | None = None
) -> list[Sentence] | None:
    """``SCINER_INT8_CALIBRATION_SENTENCES`` sentences evenly spaced over ``train`` (the text the model was trained
    on, when the caller has it) or else over the gold train file (``SCINER_GOLD_TRAIN_PATH``); no labels are used.
    None, with a warning naming ``purpose``, when neither can be read (the model folder records what the export
    did)."""
    from sciner.io import DataError
    from sciner.io.formats import read_sentences

    if train:
        return evenly_spaced(train, settings.int8_calibration_sentences)
    try:
        text = read_sentences(settings.gold_train_path)
    except DataError as exc:
        log.warning("int8 %s: no calibration text (%s)", purpose, exc)
        return None
    return evenly_spaced(text, settings.int8_calibration_sentences)


def smoothing_for(settings: Settings, train: Sequence[Sentence] | None = None) -> Smoothing | None:
    """The settings' smoothing (None: off, or the projections kept fp32), calibrated on :func:`calibration_text`.
    Without that text the export quantizes unsmoothed, with a warning."""
    if settings.int8_smooth_alpha == 0 or settings.int8_fp32_ffn_output:
        return None
    text = calibration_text(settings, "without smoothing", train)
    return None if text is None else Smoothing(settings.int8_smooth_alpha, text, settings)
