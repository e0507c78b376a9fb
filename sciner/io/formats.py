"""Read gold sentences from any supported format, chosen by file extension."""

from __future__ import annotations

from pathlib import Path

from sciner.io.conll import read_conll
from sciner.io.errors import DataError
from sciner.io.jsonl import read_jsonl
from sciner.io.labelstudio import read_labelstudio
from sciner.records import Sentence


def read_sentences(path: Path) -> list[Sentence]:
    """Gold sentences from JSONL, CoNLL (``.conll``/``.txt``/``.bio``) or Label Studio JSON (``.json``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    suffix = path.suffix.lower()
    if suffix in (".conll", ".txt", ".bio"):
        return read_conll(path)
    if suffix == ".json":
        return read_labelstudio(path)
    return read_jsonl(path)
