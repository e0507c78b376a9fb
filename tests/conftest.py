"""Shared fixtures: a real tiny fine-tuned model (seed set, ONNX fp32 + int8), data locations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

REPO = Path(__file__).resolve().parents[1]
SEED_TRAIN = REPO / "data" / "seed" / "train.jsonl"
SEED_DEV = REPO / "data" / "seed" / "dev.jsonl"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def seed_train():
    from sciner.io.jsonl import read_jsonl

    return read_jsonl(SEED_TRAIN)


@pytest.fixture(scope="session")
def seed_dev():
    from sciner.io.jsonl import read_jsonl

    return read_jsonl(SEED_DEV)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "sciner" / "dev.jsonl").is_file():
        pytest.skip("../shared/data is not beside the repo")
    return SHARED_DATA


@pytest.fixture
def sciner_env(monkeypatch):
    """Set ``SCINER_`` variables for one test, as a deployment would: ``sciner_env(BATCH_SIZE=16)``; ``None``
    unsets one. The cached settings are dropped after each change and after the test, so the next
    ``get_settings()`` reads the environment as it is then."""
    from sciner.settings import get_settings

    def apply(**values: object) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(f"SCINER_{name}", raising=False)
            else:
                monkeypatch.setenv(f"SCINER_{name}", str(value))
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory):
    from sciner.settings import Settings

    home = tmp_path_factory.mktemp("home")
    return Settings(home=home, epochs=3, learning_rate=2e-4, batch_size=8, patience=3, intra_op_threads=1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, seed_train, seed_dev, tiny_settings) -> Path:
    """A real model fine-tuned for a few epochs on the seed set, exported to ONNX (fp32 and int8)."""
    from training.pipeline import train_and_export

    out = tmp_path_factory.mktemp("models") / "tiny"
    train_and_export(seed_train, seed_dev, out, tiny_settings, progress=False)
    return out
