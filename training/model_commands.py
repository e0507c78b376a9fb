"""``sciner`` commands that build a model or an encoder other than by ``sciner train``: NER intermediate training,
domain-adaptive pre-training, distillation and model soups. Added to ``sciner`` by :func:`register`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sciner.io import DataError
from sciner.io.formats import read_sentences
from sciner.settings import get_settings
from training.cli_common import (
    ExcludeEvalSplitFlag,
    ProgressFlag,
    bars,
    fail,
    settings_with,
    train_and_dev,
    training_data,
)


def pretrain_ner_command(
    train_file: Annotated[Path, typer.Argument(help="NER data with its own labels, e.g. SciERC's train.jsonl.")],
    out: Annotated[Path, typer.Option(help="Encoder folder to write (then SCINER_BASE_MODEL=<out>).")] = Path(
        "var/encoders/ner-intermediate"
    ),
    dev_file: Annotated[Path | None, typer.Option("--dev", help="Dev data of that task (early stopping).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override SCINER_EPOCHS.")] = None,
    map_types: Annotated[
        str | None,
        typer.Option(
            help="Keep the head too, its types mapped onto SciNER's: 'scierc' (Task=TaskName, Method=MethodName, "
            "Metric=MetricName, Material=DatasetName) or SOURCE=TARGET pairs, comma-separated. Fine-tunes from "
            "the encoder start those rows from it: more precise before the O bias, no better after it "
            "(docs/quality.md)."
        ),
    ] = None,
    papers: Annotated[
        Path | None,
        typer.Option(
            help="Papers JSONL (e.g. the anthology): the task's model labels their sentences and a second model "
            "trains on the task's data plus them (NER-BERT's weak labels at scale; +0.2 over SciERC alone on 35 "
            "gold documents, two seeds: docs/quality.md)."
        ),
    ] = None,
    limit_papers: Annotated[int | None, typer.Option(help="Use only the first N papers.")] = None,
    progress: ProgressFlag = None,
) -> None:
    """NER-specific intermediate training (NER-BERT): train on another NER task, keep the encoder.

    Worth it where gold is scarce: SciERC first added +2.0 dev F1 on 35 gold documents (three seeds), nothing
    measurable on all 148 (docs/quality.md)."""
    from training.distill import unlabeled_sentences
    from training.head_transfer import parse_type_map
    from training.intermediate import pretrain_ner

    settings = settings_with(epochs)
    try:
        type_map = parse_type_map(map_types) if map_types else None
    except ValueError as exc:
        fail(str(exc))
    train_set, dev_set = train_and_dev(train_file, dev_file)
    try:
        abstracts = unlabeled_sentences(papers, limit_papers) if papers else None
    except (DataError, FileNotFoundError) as exc:
        fail(str(exc))
    try:
        result = pretrain_ner(
            train_set,
            dev_set,
            out,
            settings,
            sources={"train": train_file, "dev": dev_file, "unlabeled": papers},
            progress=bars(progress),
            type_map=type_map,
            unlabeled=abstracts,
        )
    except ValueError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result, indent=2))


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
    head_steps: Annotated[
        int | None,
        typer.Option(min=0, help="Override SCINER_ADAPT_HEAD_WARMUP_STEPS (the masked-LM head alone first)."),
    ] = None,
    progress: ProgressFlag = None,
) -> None:
    """Domain-adaptive pre-training: masked-LM training of the base encoder on the domain's text, keep the encoder."""
    from training.distill import unlabeled_sentences
    from training.domain_pretrain import adapt_encoder

    settings = settings_with(adapt_max_steps=steps, adapt_head_warmup_steps=head_steps)
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

    settings = settings_with(epochs)
    gold, dev_set, split = training_data(train_file, dev_file, settings, exclude_eval_split)
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


def register(app: typer.Typer) -> None:
    app.command("pretrain-ner")(pretrain_ner_command)
    app.command("adapt-encoder")(adapt_encoder_command)
    app.command()(distill)
    app.command()(soup)
