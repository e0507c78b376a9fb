"""CoNLL files as used by the CMU 11-711 SciNER assignment.

Reads ``tok -X- _ TAG``, ``tok TAG`` and ``tok<TAB>TAG`` lines, blank lines between sentences,
``-DOCSTART-`` lines between documents. Writes ``tok -X- _ TAG`` (Label Studio's CoNLL export).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sciner.io.errors import DataError
from sciner.labels import is_valid_tag, repair_bio
from sciner.model_dir import atomic_write_text
from sciner.records import Sentence


def read_conll(path: str | Path) -> list[Sentence]:
    path = Path(path)
    stem = path.stem
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    doc = 0
    first_line = 0

    def flush() -> None:
        nonlocal tokens, tags
        if tokens:
            n = len(sentences)
            sentences.append(
                Sentence(
                    id=f"{stem}#s{n}",
                    tokens=tokens,
                    tags=repair_bio(tags),
                    doc_id=f"{stem}#d{doc}",
                    source=f"{path}:{first_line}",
                )
            )
        tokens, tags = [], []

    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                flush()
                continue
            if line.startswith("-DOCSTART-"):
                flush()
                doc += 1
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if len(parts) < 2:
                raise DataError(path, lineno, f"expected 'token TAG', got {line!r}")
            token, tag = parts[0].strip(), parts[-1].strip()
            if not token:
                raise DataError(path, lineno, "empty token")
            if not is_valid_tag(tag):
                raise DataError(path, lineno, f"{tag!r} is not O, B-<Type> or I-<Type>")
            if not tokens:
                first_line = lineno
            tokens.append(token)
            tags.append(tag)
    flush()
    return sentences


def write_conll(path: str | Path, sentences: Iterable[Sentence]) -> None:
    blocks = []
    for s in sentences:
        tags = s.tags or ["O"] * len(s.tokens)
        blocks.append("\n".join(f"{tok} -X- _ {tag or 'O'}" for tok, tag in zip(s.tokens, tags, strict=True)))
    atomic_write_text(Path(path), "\n\n".join(blocks) + "\n")
