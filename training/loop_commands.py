"""CLI commands of the self-training loop, added to ``sciner`` by :func:`register` (exit codes:
:mod:`training.cli_common`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli_common import EXIT_BUSY, EXIT_FAILED, EXIT_INPUT, ProgressFlag, bars, fail, options_over


def _settings(**overrides: object):
    """Fresh settings from the environment (not the cached service copy)."""
    from sciner.settings import Settings

    return options_over(Settings(), **overrides)


def _stdout_to_stderr() -> contextlib.AbstractContextManager:
    """Libraries print progress to stdout (MLflow's run links); stdout is for the JSON result only."""
    return contextlib.redirect_stdout(sys.stderr)


def _echo_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Anthology JSONL, Label Studio JSON, text files or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Add papers to the paper store (deduplicated by paper id and content hash).

    Bad records are reported with file:line and reason; the good ones are kept. Exit 1 if any was bad.
    """
    from sciner.paper_records import IngestReport
    from sciner.papers import PaperStore
    from training.ingest import ingest_path

    settings = _settings()
    store = PaperStore.from_settings(settings)
    report = IngestReport()
    try:
        for path in paths:
            try:
                report.merge(ingest_path(path, store))
            except FileNotFoundError as exc:
                fail(str(exc), EXIT_INPUT)
        unused = store.count_unused()
    finally:
        store.close()
    if as_json:
        _echo_json({**report.to_dict(), "unused": unused})
    else:
        for issue in report.errors:
            typer.secho(f"{issue.where}: {issue.reason}", fg=typer.colors.YELLOW, err=True)
        typer.echo(
            f"added {report.added}, duplicates {len(report.duplicates)}, errors {len(report.errors)}; "
            f"{unused} papers unused"
        )
    if report.errors:
        raise typer.Exit(EXIT_FAILED)


def bootstrap(
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the round lock (-1: forever).")] = 0.0,
    force: Annotated[bool, typer.Option(help="Train and register even if a champion exists (not promoted).")] = False,
    progress: ProgressFlag = None,
) -> None:
    """Train the first model on the gold train split; register it as champion if there is none."""
    from training.bootstrap import run_bootstrap

    _run_round_job(run_bootstrap, "bootstrap", epochs=epochs, wait=wait, force=force, progress=progress)


def _run_round_job(
    job: Callable[..., Any], what: str, *, epochs: int | None, wait: float, force: bool, progress: bool | None
) -> None:
    """Run a round-like job under the round lock; print its result as JSON, or exit with the reason:
    ``EXIT_BUSY`` when another round holds the lock, ``EXIT_FAILED`` when the job failed."""
    from training.errors import RoundError
    from training.locking import LockBusy

    try:
        with _stdout_to_stderr():
            result = job(_settings(epochs=epochs), wait=wait, force=force, progress=bars(progress))
    except LockBusy as exc:
        fail(str(exc), EXIT_BUSY)
    except RoundError as exc:
        fail(f"{what} failed: {exc}", EXIT_FAILED)
    _echo_json(result.to_dict())


def retrain(
    once: Annotated[bool, typer.Option("--once", help="Run exactly one round now.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a running round (-1: forever).")] = 0.0,
    force: Annotated[bool, typer.Option(help="Retrain even without new papers.")] = False,
    progress: ProgressFlag = None,
) -> None:
    """One self-training round: auto-annotate new papers, retrain, evaluate, register, gate."""
    from training.rounds import run_round

    if not once:
        fail("use `sciner retrain --once` for one round, or `sciner scheduler` for rounds on a schedule", EXIT_INPUT)
    _run_round_job(run_round, "round", epochs=epochs, wait=wait, force=force, progress=progress)


def scheduler(
    run_now: Annotated[bool, typer.Option("--run-now", help="Also start a round right away.")] = False,
) -> None:
    """Run rounds on SCINER_RETRAIN_CRON (or every SCINER_RETRAIN_INTERVAL_MINUTES) until stopped."""
    from training.scheduler import run_scheduler

    run_scheduler(_settings(), run_now=run_now)


def promote(
    version: Annotated[str, typer.Option("--version", help="Model version to make champion.")],
    reason: Annotated[
        str, typer.Option(help="Why (tag promotion_reason); required for a version the gate did not promote.")
    ] = "",
    by: Annotated[str | None, typer.Option(help="Who promotes (tag promoted_by; default: your login).")] = None,
) -> None:
    """Point the champion alias at a version (the service follows on its next poll).

    Records who and why on the version first: the service serves a version the gate rejected only
    with that record."""
    from training.aliases import promote_version
    from training.errors import RoundError

    try:
        move = promote_version(_settings(), version, reason, by)
    except RoundError as exc:
        fail(str(exc), EXIT_FAILED)
    typer.echo(f"{move.alias}: v{move.before} -> v{move.after}")


def challenge(
    model_dir: Annotated[Path, typer.Argument(help="Model folder trained outside the loop (exported to ONNX).")],
    why: Annotated[str, typer.Option(help="What this model is (tag challenge_reason, in the description).")] = "",
    trust_split: Annotated[
        str,
        typer.Option(
            help="Register a model that does not record leaving out the gate's evaluation split anyway; "
            "this reason goes on the version (tag split_check)."
        ),
    ] = "",
    wait: Annotated[float, typer.Option(help="Seconds to wait for a running round (-1: forever).")] = 0.0,
) -> None:
    """Judge a model trained elsewhere (GPU, distillation, a soup) with the rounds' gate; register it.

    The version becomes the challenger, and the champion only if the gate passes. The model must have left
    out the gate's evaluation split (`sciner train/distill --exclude-eval-split` record it)."""
    from training.challenge import ChallengeInputError, run_challenge
    from training.errors import RoundError
    from training.locking import LockBusy

    try:
        with _stdout_to_stderr():
            result = run_challenge(_settings(), model_dir, why=why, trust_split=trust_split, wait=wait)
    except ChallengeInputError as exc:
        fail(str(exc), EXIT_INPUT)
    except LockBusy as exc:
        fail(str(exc), EXIT_BUSY)
    except RoundError as exc:
        fail(f"challenge failed: {exc}", EXIT_FAILED)
    _echo_json(result.to_dict())


def rollback() -> None:
    """Move the champion alias back to the version it replaced."""
    from training.aliases import rollback as do_rollback
    from training.errors import RoundError

    try:
        move = do_rollback(_settings())
    except RoundError as exc:
        fail(str(exc), EXIT_FAILED)
    typer.echo(f"{move.alias}: v{move.before} -> v{move.after}")


def export_review(
    out: Annotated[Path, typer.Option(help="Label Studio tasks JSON to write.")],
    version: Annotated[str | None, typer.Option(help="Registered version (default: the challenger).")] = None,
    round_id: Annotated[int | None, typer.Option("--round", help="A round folder under SCINER_HOME.")] = None,
    count: Annotated[int | None, typer.Option(help="How many sentences (SCINER_ACTIVE_LEARNING_COUNT).")] = None,
) -> None:
    """Export a round's lowest-confidence auto-annotated sentences as pre-annotated Label Studio tasks."""
    from sciner.registry import RegistryError
    from training.review import export_review as do_export

    try:
        n, origin = do_export(_settings(), out, version=version, round_id=round_id, count=count)
    except (FileNotFoundError, RegistryError) as exc:
        fail(str(exc), EXIT_FAILED)
    typer.echo(
        f"wrote {n} tasks from {origin} to {out} (labeling config: {out.with_name(out.stem + '.label_config.xml')})"
    )


def ingest_gold(
    path: Annotated[Path, typer.Argument(help="Corrected sentences: Label Studio export, JSONL or CoNLL.")],
) -> None:
    """Add human-corrected sentences to the gold additions (used as gold train by every later round)."""
    from sciner.io import DataError
    from training.ingest import ingest_gold as do_ingest
    from training.locking import LockBusy

    try:
        result = do_ingest(_settings(), path)
    except (DataError, LockBusy) as exc:
        fail(str(exc), EXIT_INPUT)
    typer.echo(f"added {result.added}, replaced {result.replaced}; {result.total} sentences in {result.path}")


def healthcheck(
    max_age: Annotated[float | None, typer.Option(help="Seconds (SCINER_HEARTBEAT_MAX_AGE_SECONDS).")] = None,
) -> None:
    """Exit 0 while the retrainer heartbeat under SCINER_HOME is fresh (liveness probe)."""
    from training.locking import heartbeat_age, read_heartbeat

    settings = _settings()
    limit = max_age if max_age is not None else settings.heartbeat_max_age_seconds
    age = heartbeat_age(settings.heartbeat_path)
    if age is None:
        typer.echo(f"unhealthy: no heartbeat at {settings.heartbeat_path}", err=True)
        raise typer.Exit(1)
    info = read_heartbeat(settings.heartbeat_path) or {}
    if age > limit:
        typer.echo(f"unhealthy: heartbeat {age:.0f}s old (> {limit:.0f}s), state {info.get('state')}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: heartbeat {age:.0f}s old, state {info.get('state')}")


def rounds(limit: Annotated[int, typer.Option(help="How many rounds to list.")] = 10) -> None:
    """The paper store's counts and the latest rounds."""
    from sciner.papers import PaperStore

    store = PaperStore.from_settings(_settings())
    try:
        out = {
            "papers": store.count(),
            "unused": store.count_unused(),
            "rounds": [dataclasses.asdict(r) for r in store.rounds(limit)],
        }
    finally:
        store.close()
    _echo_json(out)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(bootstrap)
    app.command()(retrain)
    app.command()(scheduler)
    app.command()(promote)
    app.command()(challenge)
    app.command()(rollback)
    app.command("export-review")(export_review)
    app.command("ingest-gold")(ingest_gold)
    app.command()(healthcheck)
    app.command()(rounds)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `sciner` command")
