"""The shared JSONL sentence schema (``id, doc_id, source, tokens, tags``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from sciner.io.errors import DataError
from sciner.labels import is_valid_tag, split_tag
from sciner.model_dir import atomic_write_text
from sciner.records import Sentence


def parse_sentence(obj: object, path: str | Path, line: int, require_tags: bool = True) -> Sentence:
    if not isinstance(obj, dict):
        raise DataError(path, line, "record is not a JSON object")
    tokens = obj.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise DataError(path, line, "'tokens' must be a non-empty list of strings")
    for i, tok in enumerate(tokens):
        if not isinstance(tok, str) or not tok or any(c.isspace() for c in tok):
            raise DataError(path, line, f"token {i} ({tok!r}) must be a non-empty string without spaces")
    tags = obj.get("tags")
    if tags is None:
        if require_tags:
            raise DataError(path, line, "'tags' is missing")
    else:
        if not isinstance(tags, list) or len(tags) != len(tokens):
            raise DataError(path, line, f"'tags' must be a list as long as 'tokens' ({len(tokens)})")
        prev = "O"
        for i, tag in enumerate(tags):
            if tag is None:  # unknown label (partial annotation)
                prev = "O"
                continue
            if not isinstance(tag, str) or not is_valid_tag(tag):
                raise DataError(path, line, f"tag {i} ({tag!r}) is not O, B-<Type> or I-<Type>")
            if tag.startswith("I-") and split_tag(prev)[1] != tag[2:]:
                raise DataError(path, line, f"tag {i} ({tag}) is not strict BIO: it follows {prev}")
            prev = tag
    sid = obj.get("id", f"{Path(path).name}:{line}")
    return Sentence(
        id=str(sid),
        tokens=tokens,
        tags=tags,
        doc_id=str(obj.get("doc_id", "")),
        source=str(obj.get("source", "")),
    )


def read_jsonl(path: str | Path, require_tags: bool = True) -> list[Sentence]:
    return list(iter_jsonl(path, require_tags))


def iter_jsonl(path: str | Path, require_tags: bool = True) -> Iterator[Sentence]:
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(path, lineno, f"invalid JSON: {exc.msg}") from None
            yield parse_sentence(obj, path, lineno, require_tags)


def sentence_to_dict(sentence: Sentence) -> dict:
    out = {"id": sentence.id, "doc_id": sentence.doc_id, "source": sentence.source, "tokens": sentence.tokens}
    if sentence.tags is not None:
        out["tags"] = sentence.tags
    if sentence.meta:
        out["meta"] = sentence.meta
    return out


def jsonl_text(sentences: Iterable[Sentence]) -> str:
    """The canonical JSONL of ``sentences``: what :func:`write_jsonl` writes, and what data hashes are taken of."""
    lines = [json.dumps(sentence_to_dict(s), ensure_ascii=False) for s in sentences]
    return "\n".join(lines) + ("\n" if lines else "")


def write_jsonl(path: str | Path, sentences: Iterable[Sentence]) -> None:
    """Atomic: the file is either the old one or complete."""
    atomic_write_text(Path(path), jsonl_text(sentences))
