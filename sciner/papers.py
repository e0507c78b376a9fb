"""The paper store: unlabeled papers waiting to be auto-annotated, and the rounds that used them.

SQLAlchemy on a SQLite file by default (``sqlite:///<home>/papers.db``), PostgreSQL by URL
(``SCINER_STORE_URL``). Torch-free, so the service can import it for ``POST /ingest``::

    from sciner.papers import ingest_records
    report = ingest_records([{"paper_id": "P17-1001", "title": "...", "abstract": "..."}], source="api")
    report.added, report.duplicates, report.errors      # errors: [IngestIssue(index, where, reason)]

Papers are deduplicated by ``paper_id`` and by a hash of their whitespace-normalized text. A round
records every paper it used (``paper_rounds``), in the same transaction that closes the round, which
happens only after the registry write succeeded: a round that dies leaves its papers unused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sciner.settings import Settings, get_settings

log = logging.getLogger(__name__)

MAX_PAPER_CHARS = 1_000_000
MAX_ID_CHARS = 255

# round status values
RUNNING, REGISTERED, FAILED, SKIPPED, ABANDONED = "running", "registered", "failed", "skipped", "abandoned"


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class PaperRow(Base):
    __tablename__ = "sciner_papers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper_id: Mapped[str] = mapped_column(String(MAX_ID_CHARS), unique=True, index=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    venue: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source: Mapped[str] = mapped_column(String(500), default="")
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class RoundRow(Base):
    __tablename__ = "sciner_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=RUNNING, index=True)
    champion_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[dict] = mapped_column(JSON, default=dict)


class PaperUseRow(Base):
    __tablename__ = "sciner_paper_rounds"

    paper: Mapped[int] = mapped_column(ForeignKey("sciner_papers.id", ondelete="CASCADE"), primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("sciner_rounds.id", ondelete="CASCADE"), primary_key=True)
    first_use: Mapped[bool] = mapped_column(default=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# --- plain records ---------------------------------------------------------------------------
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


@dataclass(slots=True)
class RoundInfo:
    id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    champion_version: str | None
    model_version: str | None
    decision: str | None
    reason: str
    stats: dict
    papers: int = 0


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


# --- the store -------------------------------------------------------------------------------
def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class PaperStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> PaperStore:
        return cls((settings or get_settings()).paper_store_url)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._session()

    # --- ingestion ---------------------------------------------------------------------------
    def add_papers(self, records: list[tuple[int, str, PaperRecord]]) -> IngestReport:
        """Insert ``(index, where, record)`` items in one transaction; duplicates are reported."""
        report = IngestReport()
        if not records:
            return report
        try:
            with self.session() as s, s.begin():
                fresh = self._dedupe(s, records, report)
                s.add_all([self._row(r) for _, _, r in fresh])
            report.added = len(fresh)
            report.paper_ids = [r.paper_id for _, _, r in fresh]
            return report
        except IntegrityError:
            # A concurrent ingest stored some of the same papers in between: go one by one.
            log.info("concurrent ingest detected, inserting one record at a time")
        report = IngestReport()
        with self.session() as s, s.begin():
            fresh = self._dedupe(s, records, report)
            for index, where, rec in fresh:
                try:
                    with s.begin_nested():
                        s.add(self._row(rec))
                except IntegrityError:
                    report.duplicates.append(IngestIssue(index, where, "already stored", rec.paper_id))
                    continue
                report.added += 1
                report.paper_ids.append(rec.paper_id)
        return report

    @staticmethod
    def _row(rec: PaperRecord) -> PaperRow:
        return PaperRow(
            paper_id=rec.paper_id,
            content_hash=rec.content_hash,
            title=rec.title,
            text=rec.text,
            year=rec.year,
            venue=rec.venue,
            source=rec.source,
        )

    @staticmethod
    def _dedupe(
        s: Session, records: list[tuple[int, str, PaperRecord]], report: IngestReport
    ) -> list[tuple[int, str, PaperRecord]]:
        ids = {r.paper_id for _, _, r in records}
        hashes = {r.content_hash for _, _, r in records}
        by_id: dict[str, str] = {}
        by_hash: dict[str, str] = {}
        for chunk in _chunks(sorted(ids), 500):
            for pid, h in s.execute(
                select(PaperRow.paper_id, PaperRow.content_hash).where(PaperRow.paper_id.in_(chunk))
            ):
                by_id[pid] = h
        for chunk in _chunks(sorted(hashes), 500):
            for pid, h in s.execute(
                select(PaperRow.paper_id, PaperRow.content_hash).where(PaperRow.content_hash.in_(chunk))
            ):
                by_hash[h] = pid
        fresh = []
        for index, where, rec in records:
            if rec.paper_id in by_id:
                same = by_id[rec.paper_id] == rec.content_hash
                reason = "already stored" if same else "paper_id stored with other content (kept the stored one)"
            elif rec.content_hash in by_hash:
                reason = f"same content as paper {by_hash[rec.content_hash]!r}"
            else:
                by_id[rec.paper_id] = rec.content_hash
                by_hash[rec.content_hash] = rec.paper_id
                fresh.append((index, where, rec))
                continue
            report.duplicates.append(IngestIssue(index, where, reason, rec.paper_id))
        return fresh

    # --- reading -----------------------------------------------------------------------------
    @staticmethod
    def _paper(row: PaperRow) -> Paper:
        return Paper(row.id, row.paper_id, row.text, row.title, row.source, row.content_hash, row.year, row.venue)

    def count(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(PaperRow)) or 0)

    def count_unused(self) -> int:
        with self.session() as s:
            used = exists().where(PaperUseRow.paper == PaperRow.id)
            return int(s.scalar(select(func.count()).select_from(PaperRow).where(~used)) or 0)

    def unused_papers(self, limit: int) -> list[Paper]:
        """Oldest-ingested papers that no round has used yet."""
        with self.session() as s:
            used = exists().where(PaperUseRow.paper == PaperRow.id)
            rows = s.scalars(select(PaperRow).where(~used).order_by(PaperRow.id).limit(limit))
            return [self._paper(r) for r in rows]

    def used_papers(self, limit: int) -> list[Paper]:
        """Papers used by earlier rounds, most recently used first."""
        if limit <= 0:
            return []
        with self.session() as s:
            last = (
                select(PaperUseRow.paper, func.max(PaperUseRow.round_id).label("last"))
                .group_by(PaperUseRow.paper)
                .subquery()
            )
            rows = s.scalars(
                select(PaperRow)
                .join(last, last.c.paper == PaperRow.id)
                .order_by(last.c.last.desc(), PaperRow.id)
                .limit(limit)
            )
            return [self._paper(r) for r in rows]

    def paper_rounds(self, paper_id: str) -> list[int]:
        """Rounds that used a paper (by public id)."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(PaperUseRow.round_id)
                    .join(PaperRow, PaperRow.id == PaperUseRow.paper)
                    .where(PaperRow.paper_id == paper_id)
                    .order_by(PaperUseRow.round_id)
                )
            )

    # --- rounds ------------------------------------------------------------------------------
    def start_round(self, champion_version: str | None = None) -> int:
        """Open a round; rounds still marked running are stale (the caller holds the round lock)."""
        with self.session() as s, s.begin():
            s.execute(
                update(RoundRow)
                .where(RoundRow.status == RUNNING)
                .values(status=ABANDONED, finished_at=_now(), reason="process ended before the round finished")
            )
            row = RoundRow(
                status=RUNNING, champion_version=champion_version, host=socket.gethostname(), pid=os.getpid(), stats={}
            )
            s.add(row)
            s.flush()
            return row.id

    def update_round(self, round_id: int, **values: Any) -> None:
        with self.session() as s, s.begin():
            s.execute(update(RoundRow).where(RoundRow.id == round_id).values(**values))

    def finish_round(
        self,
        round_id: int,
        *,
        status: str,
        decision: str | None = None,
        reason: str = "",
        model_version: str | None = None,
        stats: dict | None = None,
        new_papers: Iterable[int] = (),
        reused_papers: Iterable[int] = (),
    ) -> None:
        """Close a round and record the papers it used, in one transaction."""
        with self.session() as s, s.begin():
            s.add_all([PaperUseRow(paper=pk, round_id=round_id, first_use=True) for pk in set(new_papers)])
            s.add_all(
                [
                    PaperUseRow(paper=pk, round_id=round_id, first_use=False)
                    for pk in set(reused_papers) - set(new_papers)
                ]
            )
            s.execute(
                update(RoundRow)
                .where(RoundRow.id == round_id)
                .values(
                    status=status,
                    decision=decision,
                    reason=reason,
                    model_version=model_version,
                    stats=json.loads(json.dumps(stats or {}, default=str)),
                    finished_at=_now(),
                )
            )

    def rounds(self, limit: int = 20) -> list[RoundInfo]:
        with self.session() as s:
            counts = dict(s.execute(select(PaperUseRow.round_id, func.count()).group_by(PaperUseRow.round_id)).all())
            rows = s.scalars(select(RoundRow).order_by(RoundRow.id.desc()).limit(limit))
            return [
                RoundInfo(
                    r.id,
                    r.status,
                    r.started_at,
                    r.finished_at,
                    r.champion_version,
                    r.model_version,
                    r.decision,
                    r.reason,
                    dict(r.stats or {}),
                    counts.get(r.id, 0),
                )
                for r in rows
            ]


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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


def ingest_records(
    records: Iterable[Mapping[str, Any]],
    *,
    source: str = "api",
    settings: Settings | None = None,
    store: PaperStore | None = None,
) -> IngestReport:
    """Store papers given as dicts (anthology schema or ``{"text", "paper_id"?, "title"?}``).

    Valid records are stored in one transaction; invalid ones come back in ``report.errors`` with
    their position (``where = "record <i>"``) and reason; duplicates (by id or by content) in
    ``report.duplicates``. Never raises for bad records; raises on database errors.
    """
    own = store is None
    store = store or PaperStore.from_settings(settings)
    try:
        good, bad = validate_records(((f"record {i}", r) for i, r in enumerate(records)), source)
        report = store.add_papers(good)
        report.errors = bad + report.errors
        return report
    finally:
        if own:
            store.close()
