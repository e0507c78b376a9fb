"""Knowledge distillation (NuNER's idea: a compact encoder learns from a large automatically annotated
corpus). A teacher model folder labels sentences with soft per-word distributions, stored once with
their hash; the student trains on ``alpha * CE(gold) + (1 - alpha) * T^2 * KL(teacher || student_T)``.

The teacher runs through the shared predictor (same windows, same first-piece rule as serving), so
its distributions line up word for word with the student's training labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sciner.decoding import softmax
from sciner.encoding import document_chunks
from sciner.model_dir import atomic_write_text, sha256_file
from sciner.predictor import Predictor
from sciner.records import Sentence, documents_of
from training.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SoftTargets:
    """Per-word teacher distributions by sentence id, over ``labels`` (the student's label order)."""

    labels: list[str]
    by_id: dict[str, np.ndarray]
    sha256: str = ""
    teacher: str = ""

    def __len__(self) -> int:
        return len(self.by_id)


def teacher_distributions(
    teacher: Predictor,
    sentences: list[Sentence],
    labels: list[str],
    temperature: float,
    chunk: int = 512,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """``softmax(logits / T)`` per word, reordered to ``labels``; the teacher's decoding bias is not applied
    (the student learns the teacher's distributions, and gets its own bias calibrated afterwards)."""
    missing = set(labels) - set(teacher.labels)
    if missing:
        raise ValueError(f"the teacher has no {sorted(missing)}: its labels are {teacher.labels}")
    order = [teacher.labels.index(lab) for lab in labels]
    out: dict[str, np.ndarray] = {}
    bar = progress_bar(len(sentences), "teacher", "sentence", progress)
    for chunk_range in document_chunks(documents_of(sentences), chunk):
        part = sentences[chunk_range.start : chunk_range.stop]
        for s, w in zip(part, teacher.record_logits(part), strict=True):
            out[s.id] = softmax(w.logits[:, order] / temperature).astype(np.float32)
        bar.update(len(part))
    bar.close()
    return out


def save_soft_targets(path: Path, targets: SoftTargets, info: dict) -> str:
    """One ``.npz`` (concatenated rows + per-sentence offsets) and a ``.json`` beside it; returns the npz hash."""
    ids = sorted(targets.by_id)
    rows = [targets.by_id[i] for i in ids]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.partial.npz")
    try:
        np.savez_compressed(
            staging,
            ids=np.array(ids),
            lengths=lengths,
            probs=np.concatenate(rows) if rows else np.zeros((0, len(targets.labels)), np.float32),
        )
        staging.replace(path)
    except BaseException:  # a full disk or an interrupt leaves no staging file behind
        staging.unlink(missing_ok=True)
        raise
    digest = sha256_file(path)
    meta = {"labels": targets.labels, "sentences": len(ids), "sha256": digest, "teacher": targets.teacher, **info}
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True))
    return digest


def load_soft_targets(path: Path) -> SoftTargets:
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    with np.load(path) as data:
        ids, lengths, probs = list(data["ids"]), data["lengths"], data["probs"]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    by_id = {str(i): probs[bounds[k] : bounds[k + 1]] for k, i in enumerate(ids)}
    return SoftTargets(meta["labels"], by_id, meta["sha256"], meta.get("teacher", ""))


def cache_key(teacher_dir: Path, sentences: list[Sentence], temperature: float, variant: str = "fp32") -> str:
    """Soft targets are computed once per (teacher weights in the engine that labels, sentences, temperature)."""
    digest = hashlib.sha256()
    for name in (f"onnx/{variant}/model.onnx", "hf/model.safetensors"):
        if (teacher_dir / name).is_file():
            digest.update(sha256_file(teacher_dir / name).encode())
            break
    for s in sentences:
        digest.update(s.id.encode())
        digest.update("\x1f".join(s.tokens).encode())
    digest.update(f"T={temperature}".encode())
    return digest.hexdigest()[:16]


def distillation_loss(
    logits: object,
    labels: object,
    soft: object,
    soft_mask: object,
    alpha: float,
    temperature: float,
    label_logits: object | None = None,
    label_smoothing: float = 0.0,
) -> object:
    """``alpha * CE(labels) + (1 - alpha) * T^2 * KL(soft || softmax(logits / T))``, each averaged over the
    positions that carry it (``labels != -100``; ``soft_mask``). A batch without either term drops it.
    ``label_logits`` (default ``logits``) are what the cross-entropy scores: the logits through each
    sentence's team map (training/crowd_layer.py) while the teacher still teaches the shared model;
    ``label_smoothing`` smooths the gold labels of the cross-entropy term only."""
    import torch
    import torch.nn.functional as F

    n_labels = logits.shape[-1]  # type: ignore[attr-defined]
    flat_logits = logits.reshape(-1, n_labels)  # type: ignore[attr-defined]
    flat_label_logits = flat_logits if label_logits is None else label_logits.reshape(-1, n_labels)  # type: ignore[attr-defined]
    flat_labels = labels.reshape(-1)  # type: ignore[attr-defined]
    loss = flat_logits.new_zeros(())
    if (flat_labels != -100).any():
        ce = F.cross_entropy(flat_label_logits, flat_labels, ignore_index=-100, label_smoothing=label_smoothing)
        loss = loss + alpha * ce
    mask = soft_mask.reshape(-1).bool()  # type: ignore[attr-defined]
    if mask.any():
        target = soft.reshape(-1, n_labels)[mask]  # type: ignore[attr-defined]
        log_student = F.log_softmax(flat_logits[mask] / temperature, dim=-1)
        kl = (target * (torch.log(target.clamp_min(1e-12)) - log_student)).sum(-1).mean()
        loss = loss + (1 - alpha) * temperature**2 * kl
    return loss


ROUND_OWNER = "round"  # soft targets a self-training round wrote (and a later round may prune)


def cache_path(teacher_dir: Path, sentences: list[Sentence], settings: object) -> Path:
    """Where this teacher's distributions over ``sentences`` are cached: ``<home>/distill/<key>.npz``."""
    key = cache_key(teacher_dir, sentences, settings.distill_temperature, settings.distill_teacher_variant)  # type: ignore[attr-defined]
    return settings.home / "distill" / f"{key}.npz"  # type: ignore[attr-defined]


def soft_targets_for(
    teacher_dir: Path,
    sentences: list[Sentence],
    labels: list[str],
    settings: object,
    progress: bool = False,
    owner: str = "",
) -> SoftTargets:
    """The teacher's distributions for ``sentences``: read from ``<home>/distill/<key>.npz`` when this
    teacher already labelled exactly these sentences at this temperature, computed and stored otherwise
    (``owner`` is recorded beside a file it writes: :func:`prune_cache` removes only an owner's files)."""
    temperature = settings.distill_temperature  # type: ignore[attr-defined]
    path = cache_path(teacher_dir, sentences, settings)
    if path.is_file() and path.with_suffix(".json").is_file():
        cached = load_soft_targets(path)
        if cached.labels == labels:
            log.info("soft targets from %s (%d sentences)", path, len(cached))
            return cached
    teacher = Predictor.from_model_dir(teacher_dir, settings, settings.distill_teacher_variant)  # type: ignore[arg-type]
    by_id = teacher_distributions(teacher, sentences, labels, temperature, progress=progress)
    targets = SoftTargets(labels, by_id, teacher=str(teacher_dir))
    info = {"temperature": temperature, "engine": teacher.backend.name} | ({"owner": owner} if owner else {})
    digest = save_soft_targets(path, targets, info)
    log.info("teacher %s labelled %d sentences -> %s", teacher_dir, len(by_id), path)
    return SoftTargets(labels, by_id, digest, str(teacher_dir))


def merge_soft_targets(parts: list[SoftTargets]) -> SoftTargets:
    """One set of targets from several (same labels, disjoint sentence ids); its hash is the hash of the parts'
    hashes in order, so the lineage names exactly the cached files the student learned from. Pure."""
    if not parts:
        raise ValueError("no soft targets to merge")
    labels = parts[0].labels
    by_id: dict[str, np.ndarray] = {}
    for part in parts:
        if part.labels != labels:
            raise ValueError(f"soft targets over different labels: {part.labels} and {labels}")
        overlap = by_id.keys() & part.by_id.keys()
        if overlap:
            raise ValueError(f"soft targets overlap on {len(overlap)} sentence ids, e.g. {sorted(overlap)[0]!r}")
        by_id.update(part.by_id)
    if len(parts) == 1:
        return parts[0]
    digest = hashlib.sha256("\n".join(part.sha256 for part in parts).encode()).hexdigest()
    return SoftTargets(labels, by_id, digest, parts[0].teacher)


def soft_targets_for_parts(
    teacher_dir: Path,
    parts: list[list[Sentence]],
    labels: list[str],
    settings: object,
    progress: bool = False,
    owner: str = "",
) -> SoftTargets:
    """:func:`soft_targets_for` for each non-empty part, merged: a stable part (gold train) keeps its cache
    while another (a round's auto-annotated sentences) changes."""
    return merge_soft_targets(
        [soft_targets_for(teacher_dir, part, labels, settings, progress, owner) for part in parts if part]
    )


def prune_cache(cache_dir: Path, owner: str, keep: set[Path]) -> list[Path]:
    """Remove the cached soft targets ``owner`` wrote, except ``keep``; files without that owner (``sciner
    distill``'s abstract blocks, a teacher's earlier labelling) stay. Returns the ``.npz`` files removed."""
    removed = []
    for meta_file in sorted(cache_dir.glob("*.json")):
        npz = meta_file.with_suffix(".npz")
        if npz in keep:
            continue
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("owner") == owner:
            npz.unlink(missing_ok=True)  # the npz first: a json without its npz is never read as a hit
            meta_file.unlink(missing_ok=True)
            removed.append(npz)
    return removed


def round_soft_targets(
    teacher_dir: Path, parts: list[list[Sentence]], labels: list[str], settings: object, progress: bool = False
) -> SoftTargets:
    """A round's :func:`soft_targets_for_parts`, after removing what earlier rounds cached and this one does not
    reuse (an auto-annotated part is never labelled twice; a champion's gold part is reused only while it stays
    champion), so the cache holds one round's files instead of growing by tens of MB per round."""
    keep = {cache_path(teacher_dir, part, settings) for part in parts if part}
    removed = prune_cache(settings.home / "distill", ROUND_OWNER, keep)  # type: ignore[attr-defined]
    if removed:
        log.info("removed %d soft-target files of earlier rounds: %s", len(removed), [p.name for p in removed])
    return soft_targets_for_parts(teacher_dir, parts, labels, settings, progress, ROUND_OWNER)


TEACHER_JOIN = " + "  # how averaged targets name their teachers


def teacher_dirs(targets: SoftTargets) -> list[str]:
    """The teacher folders the targets came from (several when averaged). Pure."""
    return [t for t in targets.teacher.split(TEACHER_JOIN) if t]


def average_soft_targets(sets: list[SoftTargets]) -> SoftTargets:
    """Several teachers' distributions over the same sentences, averaged per word (ensemble distillation:
    the mean of two models' distributions labels better than either). Its hash is the hash of the sets'
    hashes in order, its teacher the teachers joined with `` + ``. Pure."""
    if not sets:
        raise ValueError("no soft targets to average")
    if len(sets) == 1:
        return sets[0]
    first = sets[0]
    for other in sets[1:]:
        if other.labels != first.labels:
            raise ValueError(f"teachers over different labels: {other.labels} and {first.labels}")
        if other.by_id.keys() != first.by_id.keys():
            raise ValueError("teachers labelled different sentences")
    by_id = {sid: np.mean([t.by_id[sid] for t in sets], axis=0, dtype=np.float32) for sid in first.by_id}
    digest = hashlib.sha256("\n".join(t.sha256 for t in sets).encode()).hexdigest()
    return SoftTargets(first.labels, by_id, digest, TEACHER_JOIN.join(t.teacher for t in sets))


def ensemble_soft_targets(
    teacher_dirs: list[Path], parts: list[list[Sentence]], labels: list[str], settings: object, progress: bool = False
) -> SoftTargets:
    """:func:`soft_targets_for_parts` for each teacher (each cached on its own), averaged over the teachers."""
    return average_soft_targets(
        [soft_targets_for_parts(teacher, parts, labels, settings, progress) for teacher in teacher_dirs]
    )


def paper_blocks(sentences: list[Sentence], papers_per_block: int) -> list[list[Sentence]]:
    """Consecutive sentences grouped by paper (``doc_id``) into blocks of ``papers_per_block`` papers, in
    order: the first blocks of N papers are the first blocks of any longer prefix. Pure."""
    if papers_per_block < 1:
        raise ValueError(f"papers_per_block must be at least 1, not {papers_per_block}")
    blocks: list[list[Sentence]] = []
    papers_in_last, last_paper = papers_per_block, None
    for s in sentences:
        if s.doc_id != last_paper:
            if papers_in_last == papers_per_block:
                blocks.append([])
                papers_in_last = 0
            papers_in_last += 1
            last_paper = s.doc_id
        blocks[-1].append(s)
    return blocks


def unlabeled_sentences(path: Path, limit: int | None = None) -> list[Sentence]:
    """Sentences of a papers JSONL (anthology schema or ``{"text": ...}``), split and tokenized the way
    the service and auto-annotation split raw text; no tags (the teacher's distributions are the signal)."""
    from sciner.io import DataError
    from sciner.paper_records import paper_from_mapping
    from sciner.pretokenize import split_sentences

    out: list[Sentence] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if limit is not None and lineno > limit:
                break
            if not raw.strip():
                continue
            try:
                paper = paper_from_mapping(json.loads(raw), str(path))
            except (ValueError, json.JSONDecodeError) as exc:
                raise DataError(path, lineno, str(exc)) from exc
            for k, sent in enumerate(split_sentences(paper.text)):
                if sent:
                    out.append(Sentence(f"{paper.paper_id}:{k}", [t.text for t in sent], None, paper.paper_id))
    return out
