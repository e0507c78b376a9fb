"""``POST /ingest``: newly published papers into the paper store, for the next retraining round.

Each record is an anthology paper (``paper_id``, ``title``, ``abstract``, ...) or ``{"text",
"paper_id"?, "title"?}``. Valid records are stored in one transaction; invalid ones are answered
with their position and reason; duplicates (same id or same content) are reported, not stored twice.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, Field

from sciner.paper_records import IngestReport
from sciner.papers import PaperStore, ingest_records
from sciner.settings import Settings

MAX_PAPERS_PER_REQUEST = 500


class IngestRequest(BaseModel):
    papers: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_PAPERS_PER_REQUEST,
        description="Papers to store: anthology records (paper_id, title, abstract, year, venue) or "
        f'{{"text", "paper_id"?, "title"?}}; at most {MAX_PAPERS_PER_REQUEST} per request.',
    )


class IngestIssueOut(BaseModel):
    index: int = Field(description="0-based position of the record in the request.")
    reason: str
    paper_id: str | None = None


class IngestResponse(BaseModel):
    added: int
    paper_ids: list[str]
    duplicates: list[IngestIssueOut]
    errors: list[IngestIssueOut]


class StoreHolder:
    """One paper store per service process, opened on first use (the service starts without one)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: PaperStore | None = None
        self._lock = threading.Lock()

    def get(self) -> PaperStore:
        with self._lock:
            if self._store is None:
                self._store = PaperStore.from_settings(self._settings)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def ingest(holder: StoreHolder, papers: list[dict[str, Any]]) -> IngestResponse:
    report: IngestReport = ingest_records(papers, source="api", store=holder.get())
    return IngestResponse(
        added=report.added,
        paper_ids=report.paper_ids,
        duplicates=[IngestIssueOut(index=i.index, reason=i.reason, paper_id=i.paper_id) for i in report.duplicates],
        errors=[IngestIssueOut(index=i.index, reason=i.reason, paper_id=i.paper_id) for i in report.errors],
    )
