"""What the service is serving: the loaded model, its atomic swap, and the readiness answer.

Requests read :attr:`ModelHolder.current` once and use that object to the end, so a swap never
changes the model under a request (or an adaptive batch) in flight; the old predictor lives on
until its last user drops the reference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sciner.backends import CPU, CUDA

if TYPE_CHECKING:
    from sciner.predictor import Predictor

TORCH_CUDA = "torch:cuda"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A predictor that has been loaded and warmed up, with what ``/model`` reports about it."""

    predictor: Predictor
    name: str
    version: str
    alias: str | None
    source: str  # "registry" | "local"
    uri: str
    model_dir: Path
    labels: list[str]
    loaded_at: datetime
    provider: str
    requested_providers: list[str] = field(default_factory=list)
    gold_f1: float | None = None
    dev_f1: float | None = None
    gpu_problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An aliased version the service would not serve: the gate did not promote it (``sciner.gating``)."""

    version: str
    reason: str
    since: datetime


class ModelHolder:
    """One reference to the serving model, replaced atomically (a single attribute store)."""

    def __init__(self) -> None:
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()  # serializes writers; readers never wait
        self.swaps = 0
        self.failed_loads = 0
        self.last_error: str | None = None
        self.refused: Refusal | None = None  # the alias points at a version that did not pass the gate
        self.refusals = 0  # distinct refusals since start

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def swap(self, new: LoadedModel) -> LoadedModel | None:
        """Make ``new`` the serving model; returns the previous one (None on the first load)."""
        with self._lock:
            old, self._current = self._current, new
            if old is not None:
                self.swaps += 1
            self.last_error = None
            return old

    def record_failure(self, reason: str) -> None:
        with self._lock:
            self.failed_loads += 1
            self.last_error = reason

    def refuse(self, version: str, reason: str, now: datetime) -> bool:
        """Record that ``version`` is not served; True the first time for this version."""
        with self._lock:
            if self.refused is not None and self.refused.version == version:
                self.refused = Refusal(version, reason, self.refused.since)
                return False
            self.refused = Refusal(version, reason, now)
            self.refusals += 1
            return True

    def clear_refusal(self) -> None:
        self.refused = None

    def readiness(self) -> tuple[bool, str | None]:
        """``(ready, reason)``: ready once a warm model is loaded and runs where settings demand."""
        model = self._current
        if model is None:
            reason = "no model loaded yet"
            if self.refused is not None:
                reason += f"; not served: {self.refused.reason}"
            elif self.last_error:
                reason += f"; last load failed: {self.last_error}"
            return False, reason
        if model.gpu_problem:
            return False, model.gpu_problem
        return True, None


def gpu_demanded(device: str, require_gpu: bool) -> bool:
    return require_gpu or device == "cuda"


def gpu_problem(device: str, require_gpu: bool, requested: list[str], active: str, available: list[str]) -> str | None:
    """Why the model does not run where the settings demand a GPU, or ``None`` if all is well.

    ONNX Runtime silently drops an execution provider it cannot initialise (missing CUDA/cuDNN
    libraries, wrong versions) and runs on the next one, usually CPU: compare what was asked for
    with what the session actually uses.
    """
    if not gpu_demanded(device, require_gpu):
        return None
    if active in (CUDA, TORCH_CUDA):
        return None
    demand = f"device={device!r}, require_gpu={require_gpu}"
    if CUDA in requested:
        return (
            f"GPU demanded ({demand}) but ONNX Runtime fell back to {active}: {CUDA} was requested "
            f"({', '.join(requested)}) and failed to initialise (CUDA/cuDNN libraries missing or "
            "incompatible?)"
        )
    if active.startswith("torch:"):
        return f"GPU demanded ({demand}) but the PyTorch fallback runs on {active.removeprefix('torch:')}"
    if CUDA not in available:
        return (
            f"GPU demanded ({demand}) but {CUDA} is not available in this onnxruntime build "
            f"(available: {', '.join(available) or 'none'}); install onnxruntime-gpu on a CUDA host"
        )
    return f"GPU demanded ({demand}) but only {', '.join(requested) or CPU} was requested"
