"""The ``sciner`` command line: training, evaluation, prediction and export here; the commands that build other
models in :mod:`training.model_commands`, the self-training loop's in :mod:`training.loop_commands`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sciner.io import DataError
from sciner.io.formats import read_sentences
from sciner.settings import get_settings
from training import loop_commands, model_commands
from training.cli_common import (
    ExcludeEvalSplitFlag,
    ProgressFlag,
    bars,
    fail,
    settings_with,
    setup_logging,
    training_data,
)

if TYPE_CHECKING:
    from sciner.predictor import Predictor

# plain help (rich_markup_mode=None): the rich panels of typer 0.29 print every flag as "<bool>"
app = typer.Typer(
    help="sciner: scientific entity recognition that keeps improving.", no_args_is_help=True, rich_markup_mode=None
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging (sciner and libraries).")] = False,
) -> None:
    setup_logging(verbose)


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

    settings = settings_with(epochs)
    train_set, dev_set, split = training_data(train_file, dev_file, settings, exclude_eval_split)
    result = train_and_export(
        train_set[:limit],
        dev_set,
        out,
        settings,
        sources={"train": train_file, "dev": dev_file},
        export=not no_export,
        progress=bars(progress),
        held_out=split,
    )
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
    dev_file: Annotated[
        Path | None,
        typer.Option("--dev", help="Gold dev data: re-fit the decoding bias on the new int8 model and re-score it."),
    ] = None,
) -> None:
    """(Re-)export ONNX fp32 (fused) and int8 (per-channel weights; SCINER_INT8_FP32_FFN_OUTPUT keeps the
    feed-forward output projections fp32, SCINER_INT8_SMOOTH_ALPHA smooths them, SCINER_INT8_ACTIVATION_SCALES
    calibrated fixes the activation scales) from the HF checkpoint.
    The decoding bias was fitted on the int8 model it replaces: pass --dev to fit it again, as training does."""
    from training.export import export_onnx
    from training.pipeline import export_and_score

    if not (model / "hf").is_dir():
        fail(f"{model}: no hf/ checkpoint inside")
    if no_quantize:
        if dev_file:
            fail("--dev fits the bias of the int8 model; it cannot go with --no-quantize")
        typer.echo(json.dumps(export_onnx(model, quantize=False)))
        return
    try:
        dev_set = read_sentences(dev_file) if dev_file else None
    except DataError as exc:
        fail(str(exc))
    typer.echo(json.dumps(export_and_score(model, dev_set, get_settings()), indent=2))


model_commands.register(app)
loop_commands.register(app)


if __name__ == "__main__":
    app()
