#!/usr/bin/env python
"""Build the seed data set (``data/seed/{train,dev}.jsonl``) from ``data/seed/seed.md``.

``seed.md`` holds original sentences written and annotated by the sciner team, with inline
annotations::

    # doc: seed-001
    We fine-tune [BERT](MethodName) on [SQuAD](DatasetName) with a
    [learning rate](HyperparameterName) of [3e-5](HyperparameterValue).

(shown wrapped here; in ``seed.md`` a sentence is always a single line).

A line ``# doc: <doc_id>`` starts a document; every other non-blank line is one sentence.
Blank lines and ``<!-- ... -->`` comments (also over several lines) are ignored. The markup is
stripped, the plain text is tokenized with :func:`sciner.pretokenize.tokenize`, and each entity's
character span is mapped to tokens; an entity whose boundary falls inside a token is an error.

Documents are split deterministically: every ``--dev-every``-th document (4th, 8th, ...) goes to
dev, the rest to train. Records follow the shared JSONL schema
``{"id", "doc_id", "source", "tokens", "tags"}`` with strict BIO tags.

Usage::

    python scripts/build_seed.py            # regenerate data/seed/train.jsonl and dev.jsonl
    python scripts/build_seed.py --stats    # also print per-split counts as a Markdown table
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sciner.labels import ENTITY_TYPES
from sciner.pretokenize import tokenize

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED = REPO_ROOT / "data" / "seed" / "seed.md"
DEFAULT_OUT_DIR = REPO_ROOT / "data" / "seed"
DEFAULT_SOURCE_PREFIX = "sciner/data/seed/seed.md"
DEFAULT_DEV_EVERY = 4

_DOC_HEADER = re.compile(r"^#\s*doc:\s*(\S+)\s*$")
_ENTITY = re.compile(r"\[([^\[\]]*)\]\(([^()\s]*)\)")
_COMMENT_OPEN = "<!--"
_COMMENT_CLOSE = "-->"


class SeedFormatError(ValueError):
    """A problem in ``seed.md``, naming the file and the 1-based line."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass(slots=True)
class SeedSentence:
    doc_id: str
    line: int
    text: str
    tokens: list[str]
    tags: list[str]


@dataclass(slots=True)
class SeedDocument:
    doc_id: str
    line: int
    sentences: list[SeedSentence] = field(default_factory=list)


def parse_markup(line: str, path: str | Path, lineno: int) -> tuple[str, list[tuple[int, int, str]]]:
    """Strip ``[text](Type)`` markup; return the plain text and entity spans ``(start, end, type)``."""
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    length = 0
    for match in _ENTITY.finditer(line):
        before = line[pos : match.start()]
        parts.append(before)
        length += len(before)
        surface, etype = match.group(1), match.group(2)
        if etype not in ENTITY_TYPES:
            raise SeedFormatError(path, lineno, f"unknown entity type {etype!r} in {match.group(0)!r}")
        if not surface.strip():
            raise SeedFormatError(path, lineno, f"empty entity {match.group(0)!r}")
        if surface != surface.strip():
            raise SeedFormatError(path, lineno, f"entity {surface!r} has leading or trailing whitespace")
        spans.append((length, length + len(surface), etype))
        parts.append(surface)
        length += len(surface)
        pos = match.end()
    parts.append(line[pos:])
    text = "".join(parts)
    if "](" in text:
        raise SeedFormatError(path, lineno, "malformed entity markup (expected [text](Type))")
    return text, spans


def to_bio(text: str, spans: list[tuple[int, int, str]], path: str | Path, lineno: int) -> tuple[list[str], list[str]]:
    """Tokenize ``text`` and tag the tokens covered by ``spans`` with strict BIO."""
    tokens = tokenize(text)
    tags = ["O"] * len(tokens)
    starts = {tok.start: i for i, tok in enumerate(tokens)}
    ends = {tok.end: i for i, tok in enumerate(tokens)}
    for start, end, etype in spans:
        surface = text[start:end]
        if start not in starts or end not in ends:
            pieces = [t.text for t in tokens if t.end > start and t.start < end]
            raise SeedFormatError(
                path,
                lineno,
                f"entity {surface!r} ({etype}) does not fall on token boundaries; tokens there: {pieces}",
            )
        first, last = starts[start], ends[end]
        if any(tag != "O" for tag in tags[first : last + 1]):
            raise SeedFormatError(path, lineno, f"entity {surface!r} overlaps another entity")
        tags[first] = f"B-{etype}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{etype}"
    return [t.text for t in tokens], tags


def parse_seed(path: str | Path) -> list[SeedDocument]:
    """Read ``seed.md`` into documents of tokenized, BIO-tagged sentences."""
    path = Path(path)
    documents: list[SeedDocument] = []
    seen: set[str] = set()
    in_comment = False
    comment_line = 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw
        # Remove comments, which may span lines.
        kept: list[str] = []
        while line:
            if in_comment:
                close = line.find(_COMMENT_CLOSE)
                if close < 0:
                    line = ""
                    break
                line = line[close + len(_COMMENT_CLOSE) :]
                in_comment = False
            else:
                opening = line.find(_COMMENT_OPEN)
                if opening < 0:
                    kept.append(line)
                    break
                kept.append(line[:opening])
                line = line[opening + len(_COMMENT_OPEN) :]
                in_comment, comment_line = True, lineno
        line = "".join(kept).strip()
        if not line:
            continue
        header = _DOC_HEADER.match(line)
        if header:
            doc_id = header.group(1)
            if doc_id in seen:
                raise SeedFormatError(path, lineno, f"duplicate document id {doc_id!r}")
            seen.add(doc_id)
            documents.append(SeedDocument(doc_id=doc_id, line=lineno))
            continue
        if line.startswith("#"):
            raise SeedFormatError(path, lineno, "a line starting with '#' must be '# doc: <doc_id>'")
        if not documents:
            raise SeedFormatError(path, lineno, "sentence before the first '# doc: <doc_id>' line")
        text, spans = parse_markup(line, path, lineno)
        tokens, tags = to_bio(text, spans, path, lineno)
        documents[-1].sentences.append(
            SeedSentence(doc_id=documents[-1].doc_id, line=lineno, text=text, tokens=tokens, tags=tags)
        )
    if in_comment:
        raise SeedFormatError(path, comment_line, "unterminated '<!--' comment")
    for doc in documents:
        if not doc.sentences:
            raise SeedFormatError(path, doc.line, f"document {doc.doc_id!r} has no sentences")
    return documents


def split_documents(documents: list[SeedDocument], dev_every: int = DEFAULT_DEV_EVERY) -> dict[str, list[SeedDocument]]:
    """Every ``dev_every``-th document (1-based: 4th, 8th, ...) to dev, the others to train."""
    if dev_every < 2:
        raise ValueError("dev_every must be at least 2")
    splits: dict[str, list[SeedDocument]] = {"train": [], "dev": []}
    for i, doc in enumerate(documents, 1):
        splits["dev" if i % dev_every == 0 else "train"].append(doc)
    return splits


def to_records(documents: list[SeedDocument], source_prefix: str = DEFAULT_SOURCE_PREFIX) -> list[dict]:
    return [
        {
            "id": f"{doc.doc_id}#s{i}",
            "doc_id": doc.doc_id,
            "source": f"{source_prefix}:{sent.line}",
            "tokens": sent.tokens,
            "tags": sent.tags,
        }
        for doc in documents
        for i, sent in enumerate(doc.sentences)
    ]


def dump_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)


def convert(
    seed_path: str | Path = DEFAULT_SEED,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    dev_every: int = DEFAULT_DEV_EVERY,
    source_prefix: str = DEFAULT_SOURCE_PREFIX,
) -> dict[str, list[dict]]:
    """Parse ``seed_path`` and write ``train.jsonl`` and ``dev.jsonl`` into ``out_dir``."""
    splits = split_documents(parse_seed(seed_path), dev_every)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, list[dict]] = {}
    for name, docs in splits.items():
        records = to_records(docs, source_prefix)
        (out / f"{name}.jsonl").write_text(dump_jsonl(records), encoding="utf-8")
        result[name] = records
    return result


def entity_counts(records: list[dict]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for rec in records:
        for tag in rec["tags"]:
            if tag.startswith("B-"):
                counts[tag[2:]] += 1
    return counts


def stats_table(splits: dict[str, list[dict]]) -> str:
    """Markdown tables of documents, sentences, tokens and entities per type for each split."""
    head = ["split", "docs", "sentences", "tokens", "entities", "sentences without entity"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    type_head = ["split", *ENTITY_TYPES]
    type_lines = ["| " + " | ".join(type_head) + " |", "|" + "---|" * len(type_head)]
    for name, records in splits.items():
        counts = entity_counts(records)
        n_sent = len(records)
        empty = sum(all(t == "O" for t in rec["tags"]) for rec in records)
        row = [
            name,
            str(len({rec["doc_id"] for rec in records})),
            str(n_sent),
            str(sum(len(rec["tokens"]) for rec in records)),
            str(sum(counts.values())),
            f"{empty} ({100 * empty / max(n_sent, 1):.0f}%)",
        ]
        lines.append("| " + " | ".join(row) + " |")
        type_lines.append("| " + " | ".join([name, *(str(counts[t]) for t in ENTITY_TYPES)]) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(type_lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="annotated source (seed.md)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where to write the JSONL")
    parser.add_argument("--dev-every", type=int, default=DEFAULT_DEV_EVERY, help="every N-th document goes to dev")
    parser.add_argument(
        "--source-prefix", default=DEFAULT_SOURCE_PREFIX, help="'source' field prefix (':<line>' is added)"
    )
    parser.add_argument("--stats", action="store_true", help="print counts per split as Markdown")
    args = parser.parse_args(argv)
    try:
        splits = convert(args.seed, args.out_dir, args.dev_every, args.source_prefix)
    except SeedFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, records in splits.items():
        print(f"wrote {len(records)} sentences to {Path(args.out_dir) / f'{name}.jsonl'}", file=sys.stderr)
    if args.stats:
        print(stats_table(splits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
