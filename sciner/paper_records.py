"""Papers as plain records: validation of what is ingested, and the shapes the store hands back.

Pure logic, no database: ``paper_from_mapping`` turns one JSON object (the anthology schema or a
generic ``{"text", "paper_id"?, "title"?}``) into a ``PaperRecord`` or says why it cannot;
``validate_records`` does that for a batch and keeps every record's position for the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

MAX_PAPER_CHARS = 1_000_000
MAX_ID_CHARS = 255


@dataclass(slots=True)
class PaperRecord:
    """A validated paper ready to store."""

    paper_id: str
    text: str
    content_hash: str
    title: str = ""
    year: int | None = None
    venue: str | None = None
    source: str = ""


@dataclass(slots=True)
class Paper:
    """A stored paper (``pk`` is the store's key; ``paper_id`` the public id)."""

    pk: int
    paper_id: str
    text: str
    title: str
    source: str
    content_hash: str
    year: int | None = None
    venue: str | None = None


@dataclass(slots=True)
class IngestIssue:
    index: int  # 0-based position of the record in its batch
    where: str  # "file.jsonl:12", "task 3", "record 0"
    reason: str
    paper_id: str | None = None


@dataclass
class IngestReport:
    added: int = 0
    duplicates: list[IngestIssue] = field(default_factory=list)
    errors: list[IngestIssue] = field(default_factory=list)
    paper_ids: list[str] = field(default_factory=list)  # ids of the papers added

    @property
    def seen(self) -> int:
        return self.added + len(self.duplicates) + len(self.errors)

    def merge(self, other: IngestReport) -> None:
        self.added += other.added
        self.duplicates += other.duplicates
        self.errors += other.errors
        self.paper_ids += other.paper_ids

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "duplicates": len(self.duplicates),
            "errors": [asdict(e) for e in self.errors],
            "duplicate_details": [asdict(d) for d in self.duplicates],
        }


def content_hash(text: str) -> str:
    """sha256 of the whitespace-normalized text: re-wrapped copies of a paper hash the same."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def paper_from_mapping(obj: object, source: str = "") -> PaperRecord:
    """Validate one record: the anthology schema (``paper_id, title, abstract, year, venue``) or a
    generic ``{"text": ..., "paper_id"?: ..., "title"?: ...}``. Raises ``ValueError(reason)``."""
    if not isinstance(obj, Mapping):
        raise ValueError("record is not a JSON object")
    title = obj.get("title", "")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise ValueError("'title' must be a string")
    body = obj.get("abstract", obj.get("text"))
    if body is None:
        raise ValueError("needs an 'abstract' or a 'text' string")
    if not isinstance(body, str):
        raise ValueError("'abstract'/'text' must be a string")
    title, body = title.strip(), body.strip()
    if not body:
        raise ValueError("'abstract'/'text' is empty")
    # A blank line keeps the title its own sentence (the sentence splitter breaks at paragraphs).
    text = f"{title}\n\n{body}" if title and not body.startswith(title) else body
    if len(text) > MAX_PAPER_CHARS:
        raise ValueError(f"text has {len(text)} characters, more than {MAX_PAPER_CHARS}")
    digest = content_hash(text)
    raw_id = obj.get("paper_id", obj.get("id"))
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        paper_id = f"sha256:{digest[:16]}"
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        paper_id = str(raw_id).strip()
    else:
        raise ValueError("'paper_id' must be a string")
    if len(paper_id) > MAX_ID_CHARS:
        raise ValueError(f"'paper_id' is longer than {MAX_ID_CHARS} characters")
    year = obj.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ValueError("'year' must be an integer")
    venue = obj.get("venue")
    if venue is not None and not isinstance(venue, str):
        raise ValueError("'venue' must be a string")
    return PaperRecord(paper_id, text, digest, title, year, (venue or None) and venue[:100], source[:500])


def validate_records(
    items: Iterable[tuple[str, object]], source: str = ""
) -> tuple[list[tuple[int, str, PaperRecord]], list[IngestIssue]]:
    """``(where, raw record)`` pairs -> valid records and issues, positions kept."""
    good: list[tuple[int, str, PaperRecord]] = []
    bad: list[IngestIssue] = []
    for index, (where, obj) in enumerate(items):
        try:
            good.append((index, where, paper_from_mapping(obj, source)))
        except ValueError as exc:
            pid = obj.get("paper_id") if isinstance(obj, Mapping) else None
            bad.append(IngestIssue(index, where, str(exc), pid if isinstance(pid, str) else None))
    return good, bad
