"""The paper store: unlabeled papers waiting to be auto-annotated, and the rounds that used them.

SQLAlchemy on a SQLite file by default (``sqlite:///<home>/papers.db``), PostgreSQL by URL
(``SCINER_STORE_URL``). Torch-free, so the service can import it for ``POST /ingest``::

    from sciner.papers import ingest_records
    report = ingest_records([{"paper_id": "P17-1001", "title": "...", "abstract": "..."}], source="api")
    report.added, report.duplicates, report.errors      # errors: [IngestIssue(index, where, reason)]

Papers are deduplicated by ``paper_id`` and by a hash of their whitespace-normalized text. A round
records every paper it used (``paper_rounds``), in the same transaction that closes the round, which
happens only after the registry write succeeded: a round that dies leaves its papers unused.
Validation and the plain records live in ``sciner.paper_records``; the tables and the database
engine in ``sciner.paper_tables``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sciner.paper_records import IngestIssue, IngestReport, Paper, PaperRecord, validate_records
from sciner.paper_tables import ABANDONED, RUNNING, Base, PaperRow, PaperUseRow, RoundRow, make_engine, utc_now
from sciner.settings import Settings, get_settings

log = logging.getLogger(__name__)


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
                .values(status=ABANDONED, finished_at=utc_now(), reason="process ended before the round finished")
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
                    finished_at=utc_now(),
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
