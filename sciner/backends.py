"""Inference engines behind the predictor: ONNX Runtime (CUDA when present, else CPU) and a
PyTorch fallback. Both map padded ``(input_ids, attention_mask)`` to logits ``[B, T, L]``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from sciner.cpus import available_cpus

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# ONNX Runtime's CPU SkipLayerNormalization kernel is ~3x slower than the Add + LayerNormalization it
# replaces; exports leave it unfused (training/export.py) and CPU sessions must not fuse it back.
CPU_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


class Backend(Protocol):
    name: str
    provider: str

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def onnx_feed(input_names: set[str], input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of an exported graph for one padded batch (BERT's graphs also take all-zero token types)."""
    feed = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "token_type_ids" in input_names:
        feed["token_type_ids"] = np.zeros_like(input_ids)
    return feed


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first."""
    if device in ("auto", "cuda") and CUDA in available:
        return [CUDA, CPU]
    return [CPU]


def disabled_optimizers(providers: list[str]) -> list[str]:
    """ONNX Runtime graph optimizers to switch off for a session on ``providers``."""
    return CPU_DISABLED_OPTIMIZERS if providers[0] == CPU else []


class OnnxBackend:
    def __init__(
        self, model_path: Path, device: str = "auto", intra_op_threads: int = 0, spinning: bool = True
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        # 0 = the CPUs this process may use (a container's CPU limit, not the node's cores)
        opts.intra_op_num_threads = intra_op_threads or available_cpus()
        opts.log_severity_level = 3
        if not spinning:  # idle intra-op threads sleep instead of spinning (CPU shared with other work)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        requested = choose_providers(device, ort.get_available_providers())
        self.session = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=requested, disabled_optimizers=disabled_optimizers(requested)
        )
        self.requested_providers = requested
        self.provider = self.session.get_providers()[0]
        self.name = f"onnxruntime:{model_path.parent.name}"
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._output = self.session.get_outputs()[0].name

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run([self._output], onnx_feed(self._inputs, input_ids, attention_mask))[0]


class TorchBackend:
    """PyTorch fallback; also wraps the in-training model so dev evaluation uses the predictor."""

    def __init__(self, model: object) -> None:
        self.model = model
        device = next(model.parameters()).device  # type: ignore[attr-defined]
        self._device = device
        self.provider = f"torch:{device.type}"
        self.name = "torch"

    @classmethod
    def from_hf_dir(cls, hf_dir: Path, device: str = "auto") -> TorchBackend:
        import torch
        from transformers import AutoModelForTokenClassification

        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        model = AutoModelForTokenClassification.from_pretrained(hf_dir)
        return cls(model.to("cuda" if use_cuda else "cpu").eval())

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        was_training = self.model.training  # type: ignore[attr-defined]
        self.model.eval()  # type: ignore[attr-defined]
        try:
            with torch.inference_mode():
                out = self.model(  # type: ignore[operator]
                    input_ids=torch.from_numpy(input_ids).to(self._device),
                    attention_mask=torch.from_numpy(attention_mask).to(self._device),
                )
        finally:
            self.model.train(was_training)  # type: ignore[attr-defined]
        return out.logits.float().cpu().numpy()
