"""Read inner tensors of an ONNX graph while the shared predictor reads calibration text through it.

The int8 export calibrates on what the graph computes inside (the smoothing's per-channel maxima, the fixed
activation scales' ranges): :class:`TensorProbe` is a predictor backend over a copy of the graph that also
returns the named tensors, and hands each batch's values at real (unpadded) word pieces to an observer, so the
text is read exactly as the service reads it (case markers, windows, batches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sciner.backends import onnx_feed

if TYPE_CHECKING:
    import onnx

    from sciner.records import Sentence
    from sciner.settings import Settings

Observer = Callable[[str, np.ndarray], None]
"""Called with a tensor's name and its values at the batch's real word pieces: shape (pieces, channels)."""


class TensorProbe:
    """A predictor backend over ``model`` that passes the named tensors of each batch to ``observe``."""

    def __init__(self, model: onnx.ModelProto, tensors: Sequence[str], observe: Observer) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import helper

        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        self.tensors = list(dict.fromkeys(tensors))
        for tensor in self.tensors:
            probe.graph.output.append(helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
        self.session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._logits = self.session.get_outputs()[0].name
        self._observe = observe
        self.name = "onnxruntime:tensor-probe"
        self.provider = "CPUExecutionProvider"

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = onnx_feed(self._inputs, input_ids, attention_mask)
        logits, *values = self.session.run([self._logits, *self.tensors], feed)
        real = attention_mask.astype(bool)
        for tensor, value in zip(self.tensors, values, strict=True):
            self._observe(tensor, value[real])
        return logits


def probe_tensors(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    model_dir: Path,
    sentences: Sequence[Sentence],
    settings: Settings,
    observe: Observer,
) -> None:
    """Read ``sentences`` through ``model`` with ``model_dir``'s tokenizer and metadata, as the service reads them,
    passing the named tensors' values to ``observe``."""
    from sciner.encoding import load_tokenizer
    from sciner.model_dir import TOKENIZER_FILE, read_metadata
    from sciner.predictor import Predictor

    probe = TensorProbe(model, tensors, observe)
    tokenizer = load_tokenizer(str(model_dir / TOKENIZER_FILE))
    Predictor(probe, tokenizer, read_metadata(model_dir), settings).record_logits(list(sentences))
