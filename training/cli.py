"""The ``sciner`` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from sciner.io import DataError
from sciner.io.formats import read_sentences
from sciner.settings import get_settings

app = typer.Typer(help="sciner: scientific entity recognition that keeps improving.", no_args_is_help=True)
log = logging.getLogger("sciner")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("transformers", "optimum", "onnxruntime", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    setup_logging(verbose)


@app.command()
def train(
    train_file: Annotated[Path, typer.Argument(help="Gold training data (JSONL, CoNLL or Label Studio JSON).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")] = Path("var/models/local"),
    dev_file: Annotated[Path | None, typer.Option("--dev", help="Gold dev data for early stopping.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N training sentences.")] = None,
    no_export: Annotated[bool, typer.Option("--no-export", help="Skip the ONNX export.")] = False,
) -> None:
    """Fine-tune the base encoder, export ONNX (fp32 + int8) and evaluate on dev."""
    from training.pipeline import train_and_export

    settings = get_settings()
    if epochs is not None:
        settings = settings.model_copy(update={"epochs": epochs})
    try:
        train_set = read_sentences(train_file)[:limit]
        dev_set = read_sentences(dev_file) if dev_file else None
    except DataError as exc:
        fail(str(exc))
    result = train_and_export(
        train_set, dev_set, out, settings, sources={"train": train_file, "dev": dev_file}, export=not no_export
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
    result = pretrain_ner(train_set, dev_set, out, settings, sources={"train": train_file, "dev": dev_file})
    typer.echo(json.dumps(result, indent=2))


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model folder.")],
    gold_file: Annotated[Path, typer.Argument(help="Gold data (JSONL, CoNLL or Label Studio JSON).")],
    variant: Annotated[str | None, typer.Option(help="int8 or fp32 (default: SCINER_ONNX_VARIANT).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Strict IOB2 micro/macro P/R/F1 per class (seqeval) and token accuracy."""
    from sciner.predictor import Predictor
    from training.evaluate import evaluate_predictor

    try:
        gold = read_sentences(gold_file)
        predictor = Predictor.from_model_dir(model, get_settings(), variant)
    except (DataError, FileNotFoundError) as exc:
        fail(str(exc))
    evaluation, _ = evaluate_predictor(predictor, gold)
    typer.echo(json.dumps(evaluation.to_dict(), indent=2) if as_json else evaluation.table())


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="Model folder.")],
    text: Annotated[str | None, typer.Option(help="Text to annotate.")] = None,
    file: Annotated[Path | None, typer.Option(help="Text file, or JSONL with a 'text' field per line.")] = None,
    variant: Annotated[str | None, typer.Option(help="int8 or fp32.")] = None,
    label_studio: Annotated[Path | None, typer.Option(help="Also write Label Studio pre-annotations.")] = None,
) -> None:
    """Annotate text: one JSON line per input with character-offset entities."""
    from sciner.io.labelstudio import prediction_task, write_tasks
    from sciner.predictor import Predictor

    texts = _input_texts(text, file)
    try:
        predictor = Predictor.from_model_dir(model, get_settings(), variant)
    except FileNotFoundError as exc:
        fail(str(exc))
    results = predictor.predict_texts(texts)
    for t, r in zip(texts, results, strict=True):
        line = {"text": t, "windows": r.windows, "entities": [e.model_dump() for e in r.entities]}
        typer.echo(json.dumps(line, ensure_ascii=False))
    if label_studio:
        version = str(model)
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
    no_quantize: Annotated[bool, typer.Option("--no-quantize")] = False,
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
