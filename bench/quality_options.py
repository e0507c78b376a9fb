"""The options of ``bench/quality.py`` and the settings they make: one variant each run."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import SHARED
from sciner.settings import Settings, get_settings, with_overrides


def quality_parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="run", help="result file: bench/results/quality-<name>.json")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--docs", type=int, default=None, help="train on this many whole documents (seeded); all if unset")
    ap.add_argument("--seed", type=int, default=13, help="seed of the document pick (bench/reproduce.py's)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--empty-ratio", type=float, default=None, help="SCINER_TRAIN_EMPTY_RATIO")
    ap.add_argument("--base-model", default=None, help="encoder folder (default SCINER_BASE_MODEL)")
    ap.add_argument(
        "--intermediate",
        type=Path,
        default=None,
        help="folder with train.jsonl/dev.jsonl of another NER task: intermediate training first",
    )
    ap.add_argument("--intermediate-epochs", type=int, default=4)
    ap.add_argument(
        "--intermediate-papers",
        type=int,
        default=0,
        help="NER-BERT's weak labels: the intermediate model labels this many abstracts of --papers and a second "
        "one trains on its data plus them",
    )
    ap.add_argument(
        "--intermediate-map",
        default=None,
        help="keep the intermediate task's head, its types mapped onto SciNER's ('scierc' or SOURCE=TARGET,...)",
    )
    ap.add_argument(
        "--auxiliary",
        type=Path,
        default=None,
        help="JSONL of another NER corpus trained on with the gold, its types mapped by --auxiliary-map, as one "
        "more annotator team of the crowd layer (training/auxiliary.py)",
    )
    ap.add_argument("--auxiliary-map", default="scierc", help="type map of --auxiliary ('scierc' or SOURCE=TARGET,...)")
    ap.add_argument(
        "--adapt-papers",
        type=int,
        default=None,
        help="domain-adaptive pre-training first (`sciner adapt-encoder`): masked-LM on the train sentences' text "
        "and this many abstracts of --papers (0: the train text alone)",
    )
    ap.add_argument(
        "--adapt-other-docs",
        action="store_true",
        help="with --docs and --adapt-papers: the text of the train documents --docs left out joins the masked-LM "
        "text, their labels unused (a deployment that labelled a few of the papers it holds)",
    )
    ap.add_argument("--adapt-steps", type=int, default=None, help="SCINER_ADAPT_MAX_STEPS (0: one full pass)")
    ap.add_argument(
        "--adapt-head-steps", type=int, default=None, help="SCINER_ADAPT_HEAD_WARMUP_STEPS (masked-LM head alone first)"
    )
    ap.add_argument("--head-lr-factor", type=float, default=None, help="SCINER_HEAD_LR_FACTOR")
    ap.add_argument("--layer-lr-decay", type=float, default=None, help="SCINER_LAYER_LR_DECAY")
    ap.add_argument(
        "--adversarial-epsilon", type=float, default=None, help="SCINER_ADVERSARIAL_EPSILON (FGM on the embeddings)"
    )
    ap.add_argument(
        "--rdrop-weight", type=float, default=None, help="SCINER_RDROP_WEIGHT (two dropout readings held together)"
    )
    ap.add_argument(
        "--mention-swap", type=float, default=None, help="SCINER_MENTION_SWAP (mentions swapped within their type)"
    )
    ap.add_argument(
        "--mention-swap-kept-types",
        type=lambda value: [t.strip() for t in value.split(",") if t.strip()],
        default=None,
        help="SCINER_MENTION_SWAP_KEPT_TYPES (comma-separated types whose mentions stay, e.g. TaskName)",
    )
    ap.add_argument(
        "--case-markers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SCINER_CASE_MARKERS: mark capitals (on by default; --no-case-markers trains as the runs before it)",
    )
    ap.add_argument(
        "--document-context",
        action="store_true",
        default=None,
        help="SCINER_DOCUMENT_CONTEXT: train and read each document's sentences together",
    )
    ap.add_argument(
        "--document-context-share",
        type=float,
        default=None,
        help="SCINER_DOCUMENT_CONTEXT_SHARE: with --document-context, the share of training documents read whole "
        "each epoch (the rest sentence by sentence)",
    )
    ap.add_argument(
        "--label-all-pieces",
        action="store_true",
        default=None,
        help="SCINER_LABEL_ALL_PIECES: train on every piece of a word (its later pieces take I-X), not its first only",
    )
    ap.add_argument(
        "--crowd-layer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SCINER_CROWD_LAYER: one learned label map per annotator team while training (crowd layer; on by "
        "default; --no-crowd-layer trains as the runs before it)",
    )
    ap.add_argument(
        "--teacher-variant",
        choices=("int8", "fp32"),
        default=None,
        help="with --teacher: the engine it labels with (SCINER_DISTILL_TEACHER_VARIANT, default fp32)",
    )
    ap.add_argument(
        "--teacher",
        type=Path,
        action="append",
        default=[],
        help="teacher model folder: distil it (gold CE + KL to its soft labels, `sciner distill`); repeated, "
        "the student learns the teachers' averaged distributions",
    )
    ap.add_argument(
        "--papers",
        type=Path,
        default=SHARED / "anthology" / "papers.jsonl",
        help="abstracts the teacher labels (with --teacher) or the encoder is adapted on (with --adapt-papers)",
    )
    ap.add_argument("--unlabeled-papers", type=int, default=0, help="with --teacher: how many of --papers")
    ap.add_argument(
        "--soup",
        type=Path,
        action="append",
        default=[],
        help="model folder to average (`sciner soup`), repeated: score the soup of these models instead of "
        "training one; the first leads (how input is read)",
    )
    ap.add_argument(
        "--rescore",
        type=Path,
        default=None,
        help="a model folder already trained (var/bench/quality-<name>): copy it and export, calibrate and score "
        "it again as today's code decodes (name propagation, say), without training",
    )
    ap.add_argument("--no-calibrate", action="store_true", help="no O-logit bias (today's decoding)")
    ap.add_argument(
        "--exclude-eval-split",
        action="store_true",
        help="leave out the gate's evaluation documents (SCINER_GOLD_EVAL_*) and record it, so that "
        "`sciner challenge` can judge the model (and its students and soups) fairly",
    )
    ap.add_argument("--out", type=Path, default=None, help="model folder (default var/bench/quality-<name>)")
    return ap


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings with the options that were given over them (and the bias fitted unless ``--no-calibrate``)."""
    overrides = {
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "batch_size": args.batch_size,
        "train_empty_ratio": args.empty_ratio,
        "base_model": args.base_model,
        "head_lr_factor": args.head_lr_factor,
        "layer_lr_decay": args.layer_lr_decay,
        "adversarial_epsilon": args.adversarial_epsilon,
        "rdrop_weight": args.rdrop_weight,
        "mention_swap": args.mention_swap,
        "mention_swap_kept_types": args.mention_swap_kept_types,
        "distill_teacher_variant": args.teacher_variant,
        "document_context": args.document_context,
        "document_context_share": args.document_context_share,
        "label_all_pieces": args.label_all_pieces,
        "case_markers": args.case_markers,
        "crowd_layer": args.crowd_layer,
        "adapt_max_steps": args.adapt_steps,
        "adapt_head_warmup_steps": args.adapt_head_steps,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    return with_overrides(get_settings(), {**given, "calibrate_o_bias": not args.no_calibrate})
