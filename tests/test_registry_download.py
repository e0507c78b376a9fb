"""A registry download lands whole or not at all (sciner.registry._download_once; no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciner.registry import RegistryError, _download_once


def test_a_download_is_renamed_into_place_and_leaves_no_staging(tmp_path):
    final = tmp_path / "cache" / "sciner-v3"

    def download(staging: Path) -> Path:
        (staging / "model").mkdir()
        (staging / "model" / "sciner.json").write_text("{}")
        return staging

    _download_once(final, "version 3", download)
    assert (final / "model" / "sciner.json").is_file()
    assert [p.name for p in final.parent.iterdir()] == ["sciner-v3"]


def test_a_failed_download_leaves_nothing_and_says_what_failed(tmp_path):
    final = tmp_path / "sciner-v3-checkpoint"

    def broken(staging: Path) -> Path:
        (staging / "half.bin").write_bytes(b"x")
        raise ConnectionError("connection reset")

    with pytest.raises(RegistryError, match=r"downloading version 3's checkpoint failed: connection reset"):
        _download_once(final, "version 3's checkpoint", broken)
    assert list(tmp_path.iterdir()) == []

    def incomplete(staging: Path) -> Path:
        raise RegistryError("version 3 holds no sciner model folder")

    with pytest.raises(RegistryError, match=r"^version 3 holds no sciner model folder$"):
        _download_once(final, "version 3", incomplete)
    assert list(tmp_path.iterdir()) == []


def test_a_subfolder_of_the_staging_area_can_be_what_is_kept(tmp_path):
    final = tmp_path / "sciner-v2-checkpoint"

    def download(staging: Path) -> Path:
        got = staging / "checkpoint"
        got.mkdir()
        (got / "config.json").write_text("{}")
        return got

    _download_once(final, "version 2's checkpoint", download)
    assert (final / "config.json").is_file() and [p.name for p in tmp_path.iterdir()] == ["sciner-v2-checkpoint"]
