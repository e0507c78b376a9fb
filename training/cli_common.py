"""What every ``sciner`` command shares: logging, progress flags, exit codes, settings and reading gold data.

Exit codes: 0 done (also "nothing to do"), 1 failed (message on stderr, nothing marked used), 2 bad input,
3 another round holds the lock.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sciner.io import DataError
from sciner.io.formats import read_sentences
from sciner.records import Sentence
from sciner.settings import Settings, get_settings, with_overrides

if TYPE_CHECKING:
    from training.eval_split import EvalSplit

EXIT_FAILED, EXIT_INPUT, EXIT_BUSY = 1, 2, 3


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("transformers", "optimum", "onnxruntime", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from sciner import quiet

    quiet.install()
    if not sys.stderr.isatty():  # MLflow's download bars: one line per redraw in a log file
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def bars(flag: bool | None) -> bool:
    """Progress bars when asked, else only on a terminal: in a log file (scheduler, k8s) each redraw of a bar
    would be one more line."""
    return sys.stderr.isatty() if flag is None else flag


ProgressFlag = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars (default: if stderr is a terminal); without, a log line every SCINER_PROGRESS_LOG_SECONDS.",
    ),
]

ExcludeEvalSplitFlag = Annotated[
    bool,
    typer.Option(
        "--exclude-eval-split",
        help="Leave out the documents of the gate's evaluation split (SCINER_GOLD_EVAL_*), as rounds do, and "
        "record it: for a teacher that annotates or is distilled in rounds, whose students that split judges, "
        "and for a model `sciner challenge` is to judge.",
    ),
]


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print the error on stderr and exit with ``code`` (default: bad input)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def options_over(settings: Settings, **options: object) -> Settings:
    """``settings`` with the options that were given (not ``None``) over them, validated as the environment's
    values are: a bad value exits with its setting named."""
    try:
        return with_overrides(settings, {name: value for name, value in options.items() if value is not None})
    except ValueError as exc:
        fail(str(exc))


def settings_with(epochs: int | None = None, **options: object) -> Settings:
    """The settings, with ``--epochs`` over SCINER_EPOCHS (and other options over theirs) when given."""
    return options_over(get_settings(), epochs=epochs, **options)


def train_and_dev(train_file: Path, dev_file: Path | None) -> tuple[list[Sentence], list[Sentence] | None]:
    """Gold train and (optional) dev sentences; a clear exit 2 on unreadable data."""
    try:
        return read_sentences(train_file), (read_sentences(dev_file) if dev_file else None)
    except DataError as exc:
        fail(str(exc))


def leave_out_eval_split(train_set: list[Sentence], train_file: Path, settings: Settings) -> EvalSplit:
    """The gate's evaluation split of ``train_set`` (its ``train`` is what is left to train on)."""
    from training.gold import evaluation_split

    try:
        split = evaluation_split(train_set, settings)
    except (DataError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(
        f"left out the evaluation split ({split.source}): {len(split.eval)} of {len(train_set)} sentences, "
        f"{len(split.documents)} documents",
        err=True,
    )
    if not split.train:
        fail(f"nothing left to train on: every document of {train_file} is in the evaluation split")
    return split


def training_data(
    train_file: Path, dev_file: Path | None, settings: Settings, exclude_eval_split: bool
) -> tuple[list[Sentence], list[Sentence] | None, EvalSplit | None]:
    """Gold train (less the gate's evaluation split when ``exclude_eval_split``), dev, and the split left out."""
    train_set, dev_set = train_and_dev(train_file, dev_file)
    split = leave_out_eval_split(train_set, train_file, settings) if exclude_eval_split else None
    return (split.train if split else train_set), dev_set, split
