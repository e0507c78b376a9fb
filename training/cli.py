"""The ``sciner`` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sciner.io import DataError
from sciner.io.formats import read_sentences
from sciner.records import Sentence
from sciner.settings import Settings, get_settings

if TYPE_CHECKING:
    from sciner.predictor import Predictor
    from training.eval_split import EvalSplit

# plain help (rich_markup_mode=None): the rich panels of typer 0.29 print every flag as "<bool>"
app = typer.Typer(
    help="sciner: scientific entity recognition that keeps improving.", no_args_is_help=True, rich_markup_mode=None
)
log = logging.getLogger("sciner")


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
    """Progress bars when asked, else only on a terminal (in a log file each redraw is one more line)."""
    return sys.stderr.isatty() if flag is None else flag


ProgressFlag = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars (default: if stderr is a terminal); without, a log line every SCINER_PROGRESS_LOG_SECONDS.",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging (sciner and libraries).")] = False,
) -> None:
    setup_logging(verbose)


def _settings(epochs: int | None) -> Settings:
    """The settings, with ``--epochs`` over SCINER_EPOCHS when given."""
    settings = get_settings()
    return settings if epochs is None else settings.model_copy(update={"epochs": epochs})


def _train_and_dev(train_file: Path, dev_file: Path | None) -> tuple[list[Sentence], list[Sentence] | None]:
    """Gold train and (optional) dev sentences; a clear exit 2 on unreadable data."""
    try:
        return read_sentences(train_file), (read_sentences(dev_file) if dev_file else None)
    except DataError as exc:
        fail(str(exc))


ExcludeEvalSplitFlag = Annotated[
    bool,
    typer.Option(
        "--exclude-eval-split",
        help="Leave out the documents of the gate's evaluation split (SCINER_GOLD_EVAL_*), as rounds do, and "
        "record it: for a teacher that annotates or is distilled in rounds, whose students that split judges, "
        "and for a model `sciner challenge` is to judge.",
    ),
]


def _leave_out_eval_split(train_set: list[Sentence], train_file: Path, settings: Settings) -> EvalSplit:
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


@app.command()
def train(
    train_file: Annotated[Path, typer.Argument(help="Gold training data (JSONL, CoNLL or Label Studio JSON).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")] = Path("var/models/local"),
    dev_file: Annotated[Path | None, typer.Option("--dev", help="Gold dev data for early stopping.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N training sentences.")] = None,
    no_export: Annotated[bool, typer.Option("--no-export", help="Skip the ONNX export.")] = False,
    exclude_eval_split: ExcludeEvalSplitFlag = False,
    progress: ProgressFlag = None,
) -> None:
    """Fine-tune the base encoder, export ONNX (fp32 + int8) and evaluate on dev."""
    from training.pipeline import train_and_export

    settings = _settings(epochs)
    train_set, dev_set = _train_and_dev(train_file, dev_file)
    split = _leave_out_eval_split(train_set, train_file, settings) if exclude_eval_split else None
    result = train_and_export(
        (split.train if split else train_set)[:limit],
        dev_set,
        out,
        settings,
        sources={"train": train_file, "dev": dev_file},
        export=not no_export,
        progress=bars(progress),
        held_out=split,
    )
    typer.echo(json.dumps(result, indent=2))


@app.command("pretrain-ner")
def pretrain_ner_command(
    train_file: Annotated[Path, typer.Argument(help="NER data with its own labels, e.g. SciERC's train.jsonl.")],
    out: Annotated[Path, typer.Option(help="Encoder folder to write (then SCINER_BASE_MODEL=<out>).")] = Path(
        "var/encoders/ner-intermediate"
    ),
    dev_file: Annotated[Path | None, typer.Option("--dev", help="Dev data of that task (early stopping).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    progress: ProgressFlag = None,
) -> None:
    """NER-specific intermediate training (NER-BERT): train on another NER task, keep the encoder."""
    from training.intermediate import pretrain_ner

    settings = get_settings()
    if epochs is not None:
        settings = settings.model_copy(update={"epochs": epochs})
    try:
        train_set = read_sentences(train_file)
        dev_set = read_sentences(dev_file) if dev_file else None
    except DataError as exc:
        fail(str(exc))
    result = pretrain_ner(
        train_set, dev_set, out, settings, sources={"train": train_file, "dev": dev_file}, progress=bars(progress)
    )
    typer.echo(json.dumps(result, indent=2))


@app.command("adapt-encoder")
def adapt_encoder_command(
    train_file: Annotated[Path, typer.Argument(help="Gold training data: its text (not its labels) is read.")],
    out: Annotated[Path, typer.Option(help="Encoder folder to write (then SCINER_BASE_MODEL=<out>).")] = Path(
        "var/encoders/adapted"
    ),
    papers: Annotated[
        Path | None, typer.Option(help="Papers JSONL (title + abstract) to read as well, e.g. the anthology.")
    ] = None,
    limit_papers: Annotated[int | None, typer.Option(help="Use only the first N papers.")] = None,
    steps: Annotated[int | None, typer.Option(help="Override SCINER_ADAPT_MAX_STEPS (0: full passes).")] = None,
    progress: ProgressFlag = None,
) -> None:
    """Domain-adaptive pre-training: masked-LM training of the base encoder on the domain's text, keep the encoder."""
    from training.distill import unlabeled_sentences
    from training.domain_pretrain import adapt_encoder

    settings = get_settings()
    if steps is not None:
        settings = settings.model_copy(update={"adapt_max_steps": steps})
    try:
        gold = read_sentences(train_file)
        abstracts = unlabeled_sentences(papers, limit_papers) if papers else []
    except (DataError, FileNotFoundError) as exc:
        fail(str(exc))
    sources = {"train": str(train_file), "papers": str(papers), "abstract_sentences": len(abstracts)}
    try:
        result = adapt_encoder(
            [(s.tokens, s.doc_id) for s in [*gold, *abstracts]], out, settings, sources, progress=bars(progress)
        )
    except ValueError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result, indent=2))


MODEL_HELP = (
    "Model folder, models:/<name>@<alias> or models:/<name>/<version> "
    "(default: what the service serves, SCINER_MODEL_URI or models:/sciner@champion)."
)


def _predictor(model: str | None, variant: str | None) -> tuple[Predictor, str]:
    from sciner.predictor import Predictor
    from sciner.settings import Settings
    from training.model_ref import ModelRefError, resolve_model

    settings = Settings()  # fresh from the environment: which registry and model to read
    try:
        resolved = resolve_model(model, settings)
        return Predictor.from_model_dir(resolved.folder, settings, variant), resolved.label
    except (ModelRefError, FileNotFoundError) as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


@app.command()
def distill(
    teacher: Annotated[Path, typer.Argument(help="Teacher model folder (e.g. an MPNet model trained by sciner).")],
    train_file: Annotated[Path, typer.Argument(help="Gold training data.")],
    out: Annotated[Path, typer.Option(help="Student model folder to write.")] = Path("var/models/student"),
    dev_file: Annotated[Path | None, typer.Option("--dev", help="Gold dev data for early stopping.")] = None,
    unlabeled: Annotated[
        Path | None, typer.Option(help="Papers JSONL (title + abstract) the teacher also labels, e.g. the anthology.")
    ] = None,
    limit_papers: Annotated[int | None, typer.Option(help="Use only the first N unlabeled papers.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    exclude_eval_split: ExcludeEvalSplitFlag = False,
    progress: ProgressFlag = None,
) -> None:
    """Distil a teacher into the student encoder (SCINER_BASE_MODEL): gold CE + KL to the teacher's soft labels."""
    from sciner.labels import labels_of
    from sciner.model_dir import read_metadata
    from training.distill import paper_blocks, soft_targets_for_parts, unlabeled_sentences
    from training.pipeline import train_and_export

    settings = _settings(epochs)
    gold, dev_set = _train_and_dev(train_file, dev_file)
    split = _leave_out_eval_split(gold, train_file, settings) if exclude_eval_split else None
    gold = split.train if split else gold
    try:
        teacher_labels = read_metadata(teacher).labels
        extra = unlabeled_sentences(unlabeled, limit_papers) if unlabeled else []
    except (DataError, FileNotFoundError) as exc:
        fail(str(exc))
    labels = labels_of(s.tags for s in gold)
    if set(labels) - set(teacher_labels):
        fail(f"the teacher's labels {teacher_labels} do not cover the gold labels {labels}")
    # gold and blocks of abstracts are labelled and cached apart: a larger --limit-papers reuses what was labelled
    parts = [gold, *paper_blocks(extra, settings.distill_block_papers)]
    targets = soft_targets_for_parts(teacher, parts, labels, settings, progress=bars(progress))
    result = train_and_export(
        [*gold, *extra],
        dev_set,
        out,
        settings,
        sources={"train": train_file, "dev": dev_file},
        progress=bars(progress),
        soft_targets=targets,
        held_out=split,
    )
    typer.echo(json.dumps(result, indent=2))


@app.command()
def soup(
    models: Annotated[
        list[Path],
        typer.Argument(help="Two or more model folders fine-tuned from one encoder with one seed (warned otherwise)."),
    ],
    out: Annotated[Path, typer.Option(help="Model folder to write.")] = Path("var/models/soup"),
    dev_file: Annotated[Path | None, typer.Option("--dev", help="Gold dev data: fit the decoding bias, score.")] = None,
) -> None:
    """Average the weights of several models into one (a model soup), export ONNX and score it on dev.

    The first model leads: the soup reads input as it does (capital markers, document context)."""
    from training.pipeline import export_and_score
    from training.soup import SoupError, make_soup

    try:
        dev_set = read_sentences(dev_file) if dev_file else None
        make_soup(models, out)
    except (SoupError, DataError, FileNotFoundError) as exc:
        fail(str(exc))
    result = {"model_dir": str(out), **export_and_score(out, dev_set, get_settings())}
    typer.echo(json.dumps(result, indent=2))


@app.command()
def evaluate(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[MODEL] GOLD_FILE",
            show_default=False,
            help="GOLD_FILE: gold data (JSONL, CoNLL or Label Studio JSON). MODEL, optional: " + MODEL_HELP,
        ),
    ],
    variant: Annotated[str | None, typer.Option(help="int8 or fp32 (default: SCINER_ONNX_VARIANT).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Strict IOB2 micro/macro P/R/F1 per class (seqeval) and token accuracy."""
    from training.evaluate import evaluate_predictor

    if len(args) not in (1, 2):
        fail("give the gold file, optionally after the model: sciner evaluate [MODEL] GOLD_FILE")
    model, gold_file = (None, Path(args[0])) if len(args) == 1 else (args[0], Path(args[1]))
    try:
        gold = read_sentences(gold_file)
    except (DataError, FileNotFoundError) as exc:
        fail(str(exc))
    predictor, _ = _predictor(model, variant)
    evaluation, _ = evaluate_predictor(predictor, gold)
    typer.echo(json.dumps(evaluation.to_dict(), indent=2) if as_json else evaluation.table())


@app.command()
def predict(
    model: Annotated[str | None, typer.Argument(help=MODEL_HELP)] = None,
    text: Annotated[str | None, typer.Option(help="Text to annotate.")] = None,
    file: Annotated[Path | None, typer.Option(help="Text file, or JSONL with a 'text' field per line.")] = None,
    variant: Annotated[str | None, typer.Option(help="int8 or fp32.")] = None,
    label_studio: Annotated[Path | None, typer.Option(help="Also write Label Studio pre-annotations.")] = None,
) -> None:
    """Annotate text: one JSON line per input with character-offset entities."""
    from sciner.io.labelstudio import prediction_task, write_tasks

    texts = _input_texts(text, file)
    predictor, version = _predictor(model, variant)
    results = predictor.predict_texts(texts)
    for t, r in zip(texts, results, strict=True):
        line = {"text": t, "windows": r.windows, "entities": [e.model_dump() for e in r.entities]}
        typer.echo(json.dumps(line, ensure_ascii=False))
    if label_studio:
        write_tasks(
            label_studio, [prediction_task(t, r.entities, version) for t, r in zip(texts, results, strict=True)]
        )


def _input_texts(text: str | None, file: Path | None) -> list[str]:
    if (text is None) == (file is None):
        fail("give exactly one of --text or --file")
    if text is not None:
        if not text.strip():
            fail("--text is empty")
        return [text]
    assert file is not None
    if not file.is_file():
        fail(f"{file}: file not found")
    if file.suffix.lower() == ".jsonl":
        texts = []
        for lineno, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                fail(f"{file}:{lineno}: invalid JSON: {exc.msg}")
            value = obj.get("text") if isinstance(obj, dict) else None
            if value is None and isinstance(obj, dict) and "abstract" in obj:
                value = f"{obj.get('title', '')}. {obj['abstract']}".strip(". ")
            if not isinstance(value, str) or not value.strip():
                fail(f"{file}:{lineno}: needs a non-empty 'text' (or 'abstract') string")
            texts.append(value)
        return texts
    return [file.read_text(encoding="utf-8")]


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Model folder with an hf/ checkpoint.")],
    no_quantize: Annotated[bool, typer.Option("--no-quantize", help="fp32 only, skip the int8 model.")] = False,
) -> None:
    """(Re-)export ONNX fp32 (fused) and int8 (dynamic, per-channel) from the HF checkpoint."""
    from training.export import export_onnx

    if not (model / "hf").is_dir():
        fail(f"{model}: no hf/ checkpoint inside")
    typer.echo(json.dumps(export_onnx(model, quantize=not no_quantize)))


def _register_extensions() -> None:
    """Commands of the self-training loop live in their own module."""
    try:
        from training.loop_commands import register
    except ImportError:
        return
    register(app)


_register_extensions()


if __name__ == "__main__":
    app()
