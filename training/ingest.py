"""``sciner ingest``: papers from files into the paper store (torch-free).

Formats, by extension:

- ``.jsonl``: one paper per line, the anthology schema (``paper_id, title, abstract, year, venue``)
  or ``{"text": ..., "paper_id"?: ..., "title"?: ...}``; bad lines are reported as ``file:line``;
- ``.json``: Label Studio tasks (``[{"data": {"text": ..., "paper_id"?: ...}}, ...]``), ``task <i>``;
- anything else (``.txt``, ``.md``): one plain-text paper per file, ``paper_id`` = file stem;
- a directory: every file inside, recursively (hidden files skipped).

Valid records are stored in one transaction per file, so a bad record never loses the good ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sciner.io import DataError
from sciner.io.formats import read_sentences
from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.paper_records import IngestIssue, IngestReport, validate_records
from sciner.papers import PaperStore
from sciner.records import Sentence
from sciner.settings import Settings
from training.locking import RoundLock

log = logging.getLogger(__name__)


def _jsonl_items(path: Path) -> Iterator[tuple[str, object]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj: object = json.loads(raw)
            except json.JSONDecodeError as exc:
                obj = _Invalid(f"invalid JSON: {exc.msg}")
            yield f"{path}:{lineno}", obj


class _Invalid(dict):
    """A placeholder record that fails validation with a given reason."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def _labelstudio_items(path: Path) -> Iterator[tuple[str, object]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of Label Studio tasks")
    for i, task in enumerate(data):
        where = f"{path}: task {i}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            yield where, _Invalid("task has no 'data' object")
            continue
        d = task["data"]
        rec = {"text": d.get("text"), "title": d.get("title", "")}
        pid = d.get("paper_id", task.get("id"))
        if pid is not None:
            rec["paper_id"] = f"ls:{pid}" if "paper_id" not in d else pid
        yield where, rec


def _text_items(path: Path) -> Iterator[tuple[str, object]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        yield str(path), _Invalid(f"not UTF-8 text: {exc.reason}")
        return
    yield str(path), {"paper_id": path.stem, "text": text}


def iter_file_records(path: Path) -> Iterator[tuple[str, object]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_items(path)
    if suffix == ".json":
        return _labelstudio_items(path)
    return _text_items(path)


def ingest_path(path: Path, store: PaperStore) -> IngestReport:
    """Ingest a file or every file under a directory; returns the combined report."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    files = (
        sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    )
    total = IngestReport()
    for file in files:
        total.merge(ingest_file(file, store))
    return total


def ingest_file(path: Path, store: PaperStore) -> IngestReport:
    try:
        items = list(iter_file_records(path))
    except (ValueError, UnicodeDecodeError) as exc:
        return IngestReport(errors=[IngestIssue(0, str(path), f"unreadable: {exc}")])
    good, bad = validate_records(((w, obj) for w, obj in items), source=str(path))
    # placeholders carry their own reason (invalid JSON, no data object)
    for issue in bad:
        obj = items[issue.index][1]
        if isinstance(obj, _Invalid):
            issue.reason = obj.reason
    report = store.add_papers(good)
    report.errors = bad + report.errors
    log.info("%s: %d added, %d duplicates, %d errors", path, report.added, len(report.duplicates), len(report.errors))
    return report


# --- gold data -------------------------------------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_data_path(path: Path) -> Path:
    """Relative paths are tried from the working directory, then from the repository root."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    alt = REPO_ROOT / path
    return alt if alt.exists() else path


def read_gold(path: Path) -> list[Sentence]:
    """Gold sentences (JSONL, CoNLL or Label Studio JSON), relative paths resolved as data paths."""
    return read_sentences(resolve_data_path(path))


@dataclass
class GoldIngest:
    added: int
    replaced: int
    total: int
    path: Path


def ingest_gold(settings: Settings, path: Path) -> GoldIngest:
    """Append human-corrected sentences (Label Studio export, JSONL or CoNLL) to the gold additions
    file under ``SCINER_HOME``; a sentence with the same tokens as an earlier addition replaces it.
    Rounds add these to gold train; the shipped gold files are never edited."""
    from sciner.io.jsonl import read_jsonl, write_jsonl

    sentences = read_gold(path)
    for s in sentences:
        if s.tags is None or any(t is None for t in s.tags):
            raise DataError(path, None, f"sentence {s.id}: every token needs a tag")
        unknown = {t[2:] for t in s.tags if t != OUTSIDE and t and t[2:] not in ENTITY_TYPES}
        if unknown:
            raise DataError(path, None, f"sentence {s.id}: unknown entity types {sorted(unknown)}")
        s.source = s.source or f"ingest-gold:{path}"
        s.meta = {}
    target = settings.gold_additions_path
    lock = RoundLock(target.with_name(".additions.lock"), "ingest-gold")
    lock.acquire(wait=60)
    try:
        existing = read_jsonl(target) if target.is_file() else []
        incoming = {tuple(s.tokens): s for s in sentences}
        kept = [s for s in existing if tuple(s.tokens) not in incoming]
        replaced = len(existing) - len(kept)
        merged = kept + list(incoming.values())
        write_jsonl(target, merged)
    finally:
        lock.release()
    log.info(
        "gold additions %s: %d new, %d replaced, %d total", target, len(incoming) - replaced, replaced, len(merged)
    )
    return GoldIngest(len(incoming) - replaced, replaced, len(merged), target)
