"""Quality benchmark: fine-tune on SciNER gold train, score the served engine on gold dev.

    .venv/bin/python bench/quality.py --name gold-1ep --epochs 1 --no-calibrate     # today's recipe
    .venv/bin/python bench/quality.py --name recipe --epochs 3 --lr 2e-4 --empty-ratio 0.3
    .venv/bin/python bench/quality.py --name recipe-scierc --epochs 3 --lr 2e-4 --empty-ratio 0.3 \\
        --intermediate ../shared/data/scierc
    .venv/bin/python bench/quality.py --name docs35 --docs 35 --epochs 3         # the low-resource regime
    .venv/bin/python bench/quality.py --name dapt --epochs 1 --adapt-papers 11390 --adapt-steps 500  # masked-LM first
    .venv/bin/python bench/quality.py --name docs35-dapt --docs 35 --epochs 3 --adapt-papers 11390 --adapt-steps 500 \
        --adapt-head-steps 100 --intermediate ../shared/data/scierc        # masked-LM, then SciERC, then the gold
    .venv/bin/python bench/quality.py --name soup --soup var/bench/quality-a --soup var/bench/quality-b
    .venv/bin/python bench/quality.py --name a-again --rescore var/bench/quality-a   # today's decoding, no training

Every variant is scored the same way: strict IOB2 seqeval on the whole dev split, through the
predictor on ONNX int8 (what the service runs) and fp32. The O-logit bias is fitted on dev; the
result also reports it *cross-fitted* (bias fitted on one half of the dev documents, scored on the
other, and the reverse), which is the honest estimate of what the bias buys on unseen data.
Writes bench/results/quality-<name>.{json,md}; ``bench/quality_report.py`` turns them into docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, env_prefix, gold_tags, machine, now, save_result, settings_env
from bench.crossfit import crossfit_decode
from bench.gpu_transfer import RUN_DIR as GPU_RUN_DIR
from bench.quality_options import quality_parser, settings_from
from bench.reproduce import pick_ids
from sciner.io.jsonl import read_jsonl
from sciner.labels import labels_of
from sciner.metrics import Evaluation, evaluate_tags
from sciner.model_dir import ONNX_DIR, read_metadata
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings, with_overrides
from training.auxiliary import auxiliary_sentences
from training.crowd_layer import team_ids
from training.distill import TEACHER_JOIN, SoftTargets, ensemble_soft_targets, paper_blocks, unlabeled_sentences
from training.domain_pretrain import adapt_encoder
from training.evaluate import evaluate_predictor
from training.gold import evaluation_split
from training.head_transfer import parse_type_map
from training.intermediate import pretrain_ner
from training.pipeline import export_and_score, train_and_export
from training.soup import make_soup
from training.trainer import TRAINING_KEYS

# what a result records of its settings: the trainer's own (the model folder's) and how it was decoded
RECORDED_SETTINGS = (
    *TRAINING_KEYS,
    "base_model",
    "distill_alpha",
    "distill_temperature",
    "distill_teacher_variant",
    "window_tokens",
    "name_propagation",
    "propagation_types",
    "propagation_min_mentions",
    "propagation_max_words",
    "propagation_min_chars",
)


def unbiased_and_cross_fitted(
    predictor: Predictor, dev: list[Sentence], crossfit: bool
) -> tuple[Evaluation, dict | None]:
    """The model's dev figures decoded without a bias, and (``crossfit``) with the bias fitted on the other half
    of the dev documents (:mod:`bench.crossfit`), from one pass of the model over dev."""
    logits = predictor.record_logits(dev)
    unbiased = evaluate_tags(gold_tags(dev), [p.tags for p in predictor.decode_records(logits, dev, 0.0)])
    if not crossfit:
        return unbiased, None
    fitted = crossfit_decode(predictor, dev, logits)
    ev = evaluate_tags(gold_tags(dev), fitted.tags)
    return unbiased, {
        "biases": fitted.biases,
        "micro_f1": ev.micro_f1,
        "precision": ev.micro_precision,
        "recall": ev.micro_recall,
    }


@dataclass
class Trained:
    """What training a variant produced, and what the result file records of it."""

    summary: dict
    settings: Settings  # as trained with (base_model is the intermediate or adapted encoder, if any)
    train: list[Sentence]  # gold train + the abstracts a teacher labelled
    intermediate: dict | None = None
    adaptation: dict | None = None
    targets: SoftTargets | None = None
    unlabeled: int = 0
    auxiliary: int = 0  # sentences of --auxiliary trained on with the gold


def unpicked_sentences(every: Sequence[Sentence], picked: Sequence[Sentence]) -> list[Sentence]:
    """The sentences of ``every`` from documents with no sentence in ``picked``, in order, their tags dropped:
    the unlabelled rest of the papers when ``--docs`` labels only some. Pure."""
    kept = {s.doc_id for s in picked}
    return [replace(s, tags=None) for s in every if s.doc_id not in kept]


def train_variant(
    args: argparse.Namespace,
    settings: Settings,
    out: Path,
    train: list[Sentence],
    dev: list[Sentence],
    every_train: Sequence[Sentence],
) -> Trained:
    """Train the variant the options describe; ``every_train`` is all of gold train, ``train`` the documents
    picked from it."""
    intermediate, adaptation, held_out = None, None, None
    if args.exclude_eval_split:
        held_out = evaluation_split(train, settings)
        train = held_out.train
    if args.adapt_papers is not None:
        abstracts = unlabeled_sentences(args.papers, args.adapt_papers) if args.adapt_papers else []
        # the documents --docs left out, never the evaluation split a run leaves out (the gate's, unseen)
        seen = [*train, *held_out.eval] if held_out else train
        others = unpicked_sentences(every_train, seen) if args.adapt_other_docs else []
        adaptation = adapt_encoder(
            [(s.tokens, s.doc_id) for s in [*train, *others, *abstracts]],
            out.with_name(out.name + "-adapted"),
            settings,
            sources={
                "train": str(args.train),
                "papers": str(args.papers),
                "abstract_sentences": len(abstracts),
                "other_train_sentences_unlabeled": len(others),
            },
            progress=sys.stderr.isatty(),
        )
        settings = settings.model_copy(update={"base_model": adaptation["encoder_dir"]})
    if args.intermediate:
        inter_settings = with_overrides(settings, {"epochs": args.intermediate_epochs})
        intermediate = pretrain_ner(
            read_jsonl(args.intermediate / "train.jsonl"),
            read_jsonl(args.intermediate / "dev.jsonl"),
            out.with_name(out.name + "-encoder"),
            inter_settings,
            sources={
                "train": args.intermediate / "train.jsonl",
                "dev": args.intermediate / "dev.jsonl",
                "unlabeled": args.papers,
            },
            progress=sys.stderr.isatty(),
            type_map=parse_type_map(args.intermediate_map) if args.intermediate_map else None,
            unlabeled=unlabeled_sentences(args.papers, args.intermediate_papers) if args.intermediate_papers else None,
        )
        settings = settings.model_copy(update={"base_model": intermediate["encoder_dir"]})
    targets, unlabeled, auxiliary = None, 0, []
    if args.auxiliary:
        gold_teams, _ = team_ids(train)
        auxiliary = auxiliary_sentences(
            read_jsonl(args.auxiliary),
            parse_type_map(args.auxiliary_map),
            f"{args.auxiliary.parent.name}/{args.auxiliary.stem}",  # scierc/train
            set(gold_teams),
        )
        train = [*train, *auxiliary]
    if args.teacher:
        extra = unlabeled_sentences(args.papers, args.unlabeled_papers) if args.unlabeled_papers else []
        labels = labels_of(s.tags for s in train)
        # gold and blocks of abstracts labelled and cached apart, as `sciner distill` does: a larger
        # --unlabeled-papers reuses what was labelled before
        parts = [train, *paper_blocks(extra, settings.distill_block_papers)]
        targets = ensemble_soft_targets(args.teacher, parts, labels, settings, sys.stderr.isatty())
        train, unlabeled = [*train, *extra], len(extra)
    summary = train_and_export(
        train,
        dev,
        out,
        settings,
        sources={"train": args.train, "dev": args.dev},
        progress=sys.stderr.isatty(),
        soft_targets=targets,
        held_out=held_out,
    )
    return Trained(summary, settings, train, intermediate, adaptation, targets, unlabeled, len(auxiliary))


def copy_model(src: Path, out: Path) -> None:
    """``src``'s checkpoint, tokenizer and metadata into ``out`` (its ONNX files are exported again)."""
    if out.resolve() == src.resolve():
        raise SystemExit(f"--rescore {src}: give the copy another --name or --out")
    staging = out.with_name(f".{out.name}.rescore-staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging, ignore=shutil.ignore_patterns(ONNX_DIR))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def trained_lineage(model_dir: Path) -> dict:
    """How a rescored model was trained, from its own folder: what it learned from (sentences, teachers,
    epochs, seed, the settings that shape it) and, for a model trained elsewhere by ``bench/ensemble_distill.py``
    (a lent GPU), that run's record (``gpu-run/run.json``: command, GPU, minutes, each teacher's dev F1)."""
    training = read_metadata(model_dir).training
    keys = ("epochs", "best_epoch", "seed", "train_sentences", "case_markers", "crowd_layer", "learning_rate")
    lineage: dict = {k: training.get(k) for k in keys}
    distillation = training.get("distillation") or {}
    lineage["teachers"] = [t for t in str(distillation.get("teacher", "")).split(TEACHER_JOIN) if t]
    run = model_dir / GPU_RUN_DIR / "run.json"
    if run.is_file():
        lineage["gpu_run"] = json.loads(run.read_text(encoding="utf-8"))
    return lineage


def soup_info(model_dir: Path) -> dict:
    """The averaged models of a soup folder and how the soup reads input (its lead's way)."""
    meta = read_metadata(model_dir)
    members = meta.training["soup"]["members"]
    return {
        "members": [m["folder"] for m in members],
        "weights_sha256": [m["weights_sha256"] for m in members],
        "case_markers": meta.case_markers,
        "context": meta.context,
    }


def main() -> None:
    ap = quality_parser(__doc__)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "optimum", "onnxruntime", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    settings = settings_from(args)
    out = args.out or REPO / "var" / "bench" / f"quality-{args.name}"
    every_train = read_jsonl(args.train)
    doc_ids = pick_ids((s.doc_id for s in every_train), args.docs, args.seed)
    picked = set(doc_ids)
    train = [s for s in every_train if s.doc_id in picked]
    dev = read_jsonl(args.dev)

    soup_conflict = args.teacher or args.intermediate or args.auxiliary or args.docs or args.exclude_eval_split
    if (args.soup or args.rescore) and (soup_conflict or args.adapt_papers is not None):
        ap.error(
            "--soup and --rescore score models already trained: no --teacher, --intermediate, --auxiliary, "
            "--adapt-papers, --docs or --exclude-eval-split with them (the model records what it left out)"
        )
    if args.adapt_other_docs and (args.adapt_papers is None or args.docs is None):
        ap.error("--adapt-other-docs adapts on the documents --docs leaves out: it needs --docs and --adapt-papers")
    if args.soup and args.rescore:
        ap.error("--soup or --rescore, not both")
    if args.auxiliary:
        try:
            parse_type_map(args.auxiliary_map)
        except ValueError as exc:
            ap.error(f"--auxiliary-map: {exc}")
    t0 = time.perf_counter()
    if args.rescore or args.soup:
        if args.rescore:
            copy_model(args.rescore, out)
        else:
            make_soup(args.soup, out)
        exported = export_and_score(out, dev, settings, train=train)
        trained = Trained({"model_dir": str(out), **exported}, settings, train)
    else:
        trained = train_variant(args, settings, out, train, dev, every_train)
    summary, settings, train, targets = trained.summary, trained.settings, trained.train, trained.targets
    train_seconds = time.perf_counter() - t0

    rows, speed, predictors = {}, {}, {}
    for variant in ("int8", "fp32"):
        predictors[variant] = Predictor.from_model_dir(out, settings, variant)
        t1 = time.perf_counter()
        evaluation, _ = evaluate_predictor(predictors[variant], dev)
        speed[variant] = len(dev) / (time.perf_counter() - t1)
        rows[variant] = evaluation
    unbiased, crossfit = unbiased_and_cross_fitted(predictors["int8"], dev, crossfit=not args.no_calibrate)

    env = settings_env()
    head = [
        f"Run {now()} on {machine()}: `{env_prefix(env)}{' '.join(sys.argv)}`",
        f"train: {len(train) - trained.auxiliary} sentences of {len(doc_ids)} documents"
        + (f" + {trained.auxiliary} of {args.auxiliary}" if trained.auxiliary else "")
        + f"; dev: {len(dev)} sentences; "
        + (
            f"soup of {len(args.soup)} models ({', '.join(p.name for p in args.soup)}); "
            if args.soup
            else f"the model of {args.rescore} scored again; "
            if args.rescore
            else f"base {Path(settings.base_model).name}; epochs {settings.epochs} (best {summary['best_epoch']}), "
            f"lr {settings.learning_rate}, batch {settings.batch_size}, empty ratio {settings.train_empty_ratio}; "
        )
        + f"O bias {summary.get('o_bias', 0.0)}; train+export {train_seconds / 60:.1f} min; "
        f"dev int8 {speed['int8']:.0f} sentences/s",
        f"int8 without bias: micro-F1 {unbiased.micro_f1:.4f} (P {unbiased.micro_precision:.3f} "
        f"R {unbiased.micro_recall:.3f})"
        + (
            f"; bias cross-fitted on dev halves {crossfit['biases']}: micro-F1 {crossfit['micro_f1']:.4f}"
            if crossfit
            else ""
        ),
        "",
    ]
    for variant, evaluation in rows.items():
        head += [f"### dev, ONNX {variant}", "", evaluation.table(), ""]
    text = "\n".join(head)
    print(text)
    save_result(
        f"quality-{args.name}",
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "command": " ".join(sys.argv),
            "env": env,
            "machine": machine(),
            "at": now(),
            "settings": {k: v for k, v in settings.model_dump(mode="json").items() if k in RECORDED_SETTINGS},
            "intermediate": trained.intermediate,
            "adaptation": trained.adaptation,
            "train_documents": len(doc_ids),
            "train_sentences": len(train) - trained.unlabeled - trained.auxiliary,
            "auxiliary": {"file": str(args.auxiliary), "type_map": args.auxiliary_map, "sentences": trained.auxiliary}
            if trained.auxiliary
            else None,
            "teacher": {
                "folder": " + ".join(str(t) for t in args.teacher),
                "soft_targets_sha256": targets.sha256,
                "unlabeled_sentences": trained.unlabeled,
            }
            if targets is not None
            else None,
            "soup": soup_info(out) if args.soup else None,
            "int8": read_metadata(out).extra.get("int8"),  # how the served engine was quantized
            "rescored": str(args.rescore) if args.rescore else None,
            "rescored_training": trained_lineage(args.rescore) if args.rescore else None,
            "summary": summary,
            "train_seconds": train_seconds,
            "sentences_per_second": speed,
            "dev": {v: e.to_dict() for v, e in rows.items()},
            "dev_int8_unbiased": unbiased.to_dict(),
            "crossfit": crossfit,
        },
        text,
    )


if __name__ == "__main__":
    main()
