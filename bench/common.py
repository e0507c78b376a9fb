"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import platform
import random
from datetime import UTC, datetime
from pathlib import Path

from sciner.records import Sentence

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"


def machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sample_by_document(sentences: list[Sentence], max_sentences: int, seed: int) -> list[Sentence]:
    """Whole documents in a seeded random order until ``max_sentences`` is reached."""
    docs: dict[str, list[Sentence]] = {}
    for s in sentences:
        docs.setdefault(s.doc_id, []).append(s)
    order = sorted(docs)
    random.Random(seed).shuffle(order)
    out: list[Sentence] = []
    for d in order:
        if len(out) >= max_sentences:
            break
        out.extend(docs[d])
    return out[:max_sentences]


def save_result(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown)
