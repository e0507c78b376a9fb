"""The paper store and the scheduler job store on a real PostgreSQL (what k8s runs), when the
``postgres`` binaries are on this machine; skipped otherwise."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from sciner.paper_records import validate_records
from sciner.papers import PaperStore, ingest_records
from sciner.settings import Settings

pytestmark = pytest.mark.slow


def _as_db_user(cmd: str) -> list[str]:
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        return ["su", "postgres", "-c", cmd]
    return ["bash", "-c", cmd]


@pytest.fixture(scope="module")
def pg_url():
    if not shutil.which("initdb") or not shutil.which("pg_ctl"):
        pytest.skip("PostgreSQL binaries not installed")
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        pytest.skip("running as root without a postgres user")
    root = Path(tempfile.mkdtemp(prefix="sciner-pg-"))  # pytest's tmp dirs are private to root
    os.chmod(root, 0o777)
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    q = shlex.quote
    subprocess.run(
        _as_db_user(f"initdb -D {q(str(data))} -A trust -U sciner > {q(str(root / 'initdb.log'))} 2>&1"),
        check=True,
        timeout=120,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_db_user(f"pg_ctl -D {q(str(data))} -o {q(opts)} -l {q(str(root / 'log'))} -w start"),
        check=True,
        timeout=120,
        capture_output=True,
    )
    yield f"postgresql+psycopg://sciner@127.0.0.1:{port}/postgres"
    subprocess.run(_as_db_user(f"pg_ctl -D {q(str(data))} -m fast -w stop"), timeout=120, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_store_on_postgres_dedupes_survives_a_concurrent_ingest_and_records_rounds(pg_url):
    store = PaperStore(pg_url)
    try:
        report = ingest_records(
            [{"paper_id": f"P{i}", "abstract": f"Paper {i}."} for i in range(4)] + [{"x": 1}], store=store
        )
        assert report.added == 4 and [e.index for e in report.errors] == [4]
        # another writer stores Q between our duplicate check and our insert: Q ends up a duplicate
        good, _ = validate_records(
            [("a", {"paper_id": "Q", "abstract": "Q text."}), ("b", {"paper_id": "R", "abstract": "R text."})]
        )
        check = store._dedupe
        raced = []

        def racing(session, records, rep):
            fresh = check(session, records, rep)
            if not raced:
                raced.append(1)
                other = PaperStore(pg_url)
                ingest_records([{"paper_id": "Q", "abstract": "Q text."}], store=other)
                other.close()
            return fresh

        store._dedupe = racing  # type: ignore[method-assign]
        rep = store.add_papers(good)
        assert rep.added == 1 and rep.paper_ids == ["R"] and rep.duplicates[0].paper_id == "Q"
        store._dedupe = check  # type: ignore[method-assign]
        r = store.start_round("1")
        store.finish_round(
            r,
            status="registered",
            decision="promoted",
            model_version="2",
            new_papers=[p.pk for p in store.unused_papers(3)],
            stats={"ok": True},
        )
        assert store.count() == 6 and store.count_unused() == 3
        assert store.paper_rounds("P0") == [r] and store.rounds(1)[0].papers == 3
    finally:
        store.close()


def test_scheduler_job_store_on_postgres(pg_url):
    from training.scheduler import ensure_job, make_scheduler

    settings = Settings(store_url=pg_url, retrain_cron="0 3 * * 0")
    first = None
    for _ in range(2):  # the second start finds the persisted job
        sched = make_scheduler(settings)
        sched.start(paused=True)
        try:
            job = ensure_job(sched, settings)
            first = first or job.next_run_time
            assert job.next_run_time == first and job.max_instances == 1 and job.coalesce
        finally:
            sched.shutdown(wait=False)
