"""Layout of a model folder and its metadata file.

A model folder is self-contained, everything the predictor and the registry need::

    <model>/
      sciner.json          labels, special token ids, lineage, data hashes, settings, metrics
      tokenizer.json       fast tokenizer (Rust) used by the predictor
      hf/                  Hugging Face checkpoint + tokenizer (training, PyTorch fallback)
      onnx/fp32/model.onnx Optimum export, graph-optimized
      onnx/int8/model.onnx dynamic per-channel int8 quantization of fp32
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

METADATA_FILE = "sciner.json"
TOKENIZER_FILE = "tokenizer.json"
HF_DIR = "hf"
ONNX_DIR = "onnx"


@dataclass
class ModelMetadata:
    labels: list[str]
    cls_id: int
    sep_id: int
    pad_id: int
    max_positions: int
    base_model: str
    created_at: str = ""
    unk_id: int | None = None  # the tokenizer's unknown-piece id ([UNK] in BERT, <unk> in MPNet)
    data: dict[str, Any] = field(default_factory=dict)  # name -> {path, sha256, sentences}
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # how the predictor turns logits into tags: {"o_bias": float, "calibration": {...}}
    decoding: dict[str, Any] = field(default_factory=dict)
    # what one model input holds: "sentence" (one sentence per window) or "document" (consecutive sentences
    # of a document read together, windows crossing sentence boundaries); the predictor reads as trained
    context: str = "sentence"
    # token ids marking a word's capitals for an uncased encoder (all caps, capital initial, mixed), or None
    case_markers: list[int] | None = None

    @property
    def o_bias(self) -> float:
        """Subtracted from the ``O`` logit of every word before decoding (> 0 favours entities)."""
        return float(self.decoding.get("o_bias", 0.0))

    @property
    def reads_documents(self) -> bool:
        return self.context == "document"


def onnx_path(model_dir: Path, variant: str) -> Path:
    return model_dir / ONNX_DIR / variant / "model.onnx"


def read_metadata(model_dir: Path) -> ModelMetadata:
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a sciner model folder: {METADATA_FILE} missing")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return ModelMetadata(**raw)


def write_metadata(model_dir: Path, meta: ModelMetadata) -> None:
    atomic_write_text(model_dir / METADATA_FILE, json.dumps(asdict(meta), indent=2, sort_keys=True))


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
