"""NER-specific intermediate training (NER-BERT's idea): fine-tune the base encoder on an NER task from
other data (SciERC: Task / Method / Metric / Material / ...), keep the encoder, drop the head.

The result is an ordinary Hugging Face encoder folder; point ``SCINER_BASE_MODEL`` at it and every
later fine-tune (bootstrap, rounds) starts from it at no extra cost per round. Measured with today's recipe:
SciERC first adds +1.8 to +2.1 dev F1 (paired, cross-fitted, three seeds) on 35 gold documents, nothing
measurable on all gold (docs/quality.md), so it is a bootstrap choice, not a default. Neither the SciERC head
carried over (``type_map``) nor abstracts the SciERC model labelled (``unlabeled``) added to it (session 34).
"""

from __future__ import annotations

import logging
import shutil
import time
from functools import partial
from pathlib import Path

from sciner.labels import entity_types_in
from sciner.model_dir import HF_DIR, read_metadata
from sciner.records import Sentence
from sciner.settings import Settings
from training.encoder_folder import write_encoder_folder
from training.head_transfer import save_head
from training.pipeline import data_fingerprint
from training.trainer import TrainResult, train_model

log = logging.getLogger(__name__)

LINEAGE_FILE = "sciner_intermediate.json"
WIDEN_OWNER = "pretrain-ner"  # the owner of the soft targets the widening stage caches (removed once it trained)


def pretrain_ner(
    train: list[Sentence],
    dev: list[Sentence] | None,
    out: Path,
    settings: Settings,
    sources: dict[str, Path | None] | None = None,
    progress: bool = True,
    type_map: dict[str, str] | None = None,
    unlabeled: list[Sentence] | None = None,
) -> dict:
    """Train a token classifier on ``train`` (its own label set) and write only its encoder to ``out``; with a
    ``type_map`` (its types onto SciNER's) its head too, for later fine-tunes to start from
    (:mod:`training.head_transfer`). With ``unlabeled`` sentences (abstracts), NER-BERT's weak labels at scale:
    that model labels them (soft, per word) and a second one trains on ``train`` plus them (:func:`widen`)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    started = time.perf_counter()
    sources = sources or {}
    if type_map:
        unknown = sorted(set(type_map) - set(entity_types_in(s.tags or [] for s in train)))
        if unknown:
            raise ValueError(f"the type map names types the training data does not have: {unknown}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(f".{out.name}.ner-task")
    data = {"train": data_fingerprint(train, sources.get("train"))}
    if dev:
        data["dev"] = data_fingerprint(dev, sources.get("dev"))
    result = train_model(train, dev, work, settings, data_info=data, progress=progress)
    silver = None
    if unlabeled:
        data["unlabeled"] = data_fingerprint(unlabeled, sources.get("unlabeled"))
        first_dev = result.dev.micro_f1 if result.dev else None
        result, work = widen(train, unlabeled, dev, work, settings, data, progress)
        silver = {"sentences": len(unlabeled), "labelled_by_dev_micro_f1": first_dev}
    model = AutoModelForTokenClassification.from_pretrained(work / HF_DIR)
    tokenizer = AutoTokenizer.from_pretrained(work / HF_DIR)
    lineage = {
        "base_model": settings.base_model,
        "data": data,
        "labels": model.config.id2label,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "dev_micro_f1": result.dev.micro_f1 if result.dev else None,
        "seconds": time.perf_counter() - started,  # both models and the labelling, where widened
        "head_type_map": type_map,
        "silver": silver,
    }
    keep_head = partial(save_head, model, type_map=type_map) if type_map else None
    write_encoder_folder(model, tokenizer, out, LINEAGE_FILE, lineage, extra=keep_head)
    shutil.rmtree(work, ignore_errors=True)
    log.info("intermediate NER encoder in %s (dev micro-F1 %s)", out, lineage["dev_micro_f1"])
    return {"encoder_dir": str(out), **lineage}


def widen(
    train: list[Sentence],
    unlabeled: list[Sentence],
    dev: list[Sentence] | None,
    teacher_dir: Path,
    settings: Settings,
    data: dict,
    progress: bool,
) -> tuple[TrainResult, Path]:
    """The model in ``teacher_dir`` labels ``train`` and ``unlabeled`` with its per-word distributions; a fresh
    model trains on both (cross-entropy on ``train``'s tags, KL to the distributions everywhere: the
    distillation loss of ``sciner distill``). The teacher folder and its cached soft targets are removed; returns
    the new folder."""
    from training.distill import paper_blocks, prune_cache, soft_targets_for_parts

    labels = read_metadata(teacher_dir).labels
    parts = [train, *paper_blocks(unlabeled, settings.distill_block_papers)]
    targets = soft_targets_for_parts(teacher_dir, parts, labels, settings, progress=progress, owner=WIDEN_OWNER)
    student = teacher_dir.with_name(teacher_dir.name + "-widened")
    result = train_model(
        [*train, *unlabeled],
        dev,
        student,
        settings,
        labels=labels,
        data_info=data,
        progress=progress,
        soft_targets=targets,
    )
    shutil.rmtree(teacher_dir, ignore_errors=True)
    # the labelling model is gone, so its soft targets are never read again: leave no cache behind
    removed = prune_cache(settings.home / "distill", WIDEN_OWNER, keep=set())
    log.info("removed %d cached soft-target files of the widening stage", len(removed))
    log.info("intermediate model widened by %d unlabeled sentences -> %s", len(unlabeled), student)
    return result, student
