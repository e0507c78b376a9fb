"""Fine-tune a token-classification model from the base encoder and write a complete model folder."""

from __future__ import annotations

import copy
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from sciner.backends import TorchBackend
from sciner.encoding import load_tokenizer
from sciner.labels import OUTSIDE, continuation_labels, labels_of, split_tag
from sciner.metrics import Evaluation
from sciner.model_dir import HF_DIR, TOKENIZER_FILE, ModelMetadata, write_metadata
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings
from training.adversarial import adversarial_backward
from training.batch_loss import batch_loss, collate
from training.batching import epoch_examples, split_by_entity
from training.context_mix import documents_read_whole, epoch_batches, mixed_examples, steps_per_epoch
from training.crowd_layer import MIN_CROWD_TEAMS, crowd_layer_summary, make_crowd_layer, team_ids
from training.distill import SoftTargets
from training.evaluate import evaluate_predictor
from training.features import Example, build_examples
from training.head_transfer import transfer_head
from training.mention_swap import MentionPool, swap_mentions
from training.param_groups import parameter_groups
from training.progress import progress_bar
from training.weight_average import make_weight_average

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: Path
    best_epoch: int
    epochs_run: int
    dev: Evaluation | None
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _special_ids(hf_tokenizer: object) -> tuple[int, int, int]:
    cls_id = hf_tokenizer.cls_token_id  # type: ignore[attr-defined]
    sep_id = hf_tokenizer.sep_token_id  # type: ignore[attr-defined]
    pad_id = hf_tokenizer.pad_token_id  # type: ignore[attr-defined]
    if cls_id is None:
        cls_id = hf_tokenizer.bos_token_id  # type: ignore[attr-defined]
    if sep_id is None:
        sep_id = hf_tokenizer.eos_token_id  # type: ignore[attr-defined]
    if cls_id is None or sep_id is None or pad_id is None:
        raise ValueError("the base tokenizer needs CLS/BOS, SEP/EOS and PAD tokens")
    return int(cls_id), int(sep_id), int(pad_id)


CASE_MARKER_TOKENS = ("[unused0]", "[unused1]", "[unused2]")


def case_marker_ids(hf_tokenizer: object) -> list[int] | None:
    """Ids of the vocabulary's unused tokens that mark capitals, for an uncased tokenizer (BERT's and
    MPNet's vocabularies have them); ``None`` for a cased tokenizer (it sees capitals itself) or a
    vocabulary without them (that model trains without markers, and its folder says so)."""
    if hf_tokenizer.tokenize("BERT") != hf_tokenizer.tokenize("bert"):  # type: ignore[attr-defined]
        return None
    vocab = hf_tokenizer.get_vocab()  # type: ignore[attr-defined]
    missing = [t for t in CASE_MARKER_TOKENS if t not in vocab]
    if missing:
        log.warning("no case markers: the base vocabulary has no %s", ", ".join(missing))
        return None
    return [int(vocab[t]) for t in CASE_MARKER_TOKENS]


def plateaued(best_f1: float, best_epoch: int, epoch: int, patience: int) -> bool:
    """Early stopping: ``patience`` epochs without a dev gain, counted only once the model has found
    a dev entity (a model still at F1 0 is warming up, not on a plateau: small sets need a few epochs)."""
    return best_f1 > 0 and epoch - best_epoch >= patience


def training_device(setting: str, cuda_available: bool) -> str:
    """``cuda`` when asked for (or ``auto``) and present, else ``cpu`` (the teacher trains on a GPU node)."""
    if setting == "cuda" and not cuda_available:
        log.warning("SCINER_DEVICE=cuda but CUDA is not available: training on CPU")
    return "cuda" if setting in ("auto", "cuda") and cuda_available else "cpu"


def train_model(
    train: list[Sentence],
    dev: list[Sentence] | None,
    out_dir: str | Path,
    settings: Settings,
    labels: list[str] | None = None,
    data_info: dict | None = None,
    progress: bool = True,
    soft_targets: SoftTargets | None = None,
) -> TrainResult:
    """Fine-tune ``settings.base_model`` on ``train``; early-stop on dev micro-F1.

    Writes ``out_dir`` (HF checkpoint, tokenizer, metadata); ONNX export is a separate step.
    The folder is built under a temporary name and renamed at the end, so it is never half-written.
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    started = time.perf_counter()
    out_dir = Path(out_dir)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    seed_everything(settings.seed)
    if not train:
        raise ValueError("no training sentences")
    if soft_targets is not None:
        labels = labels or soft_targets.labels
        if labels != soft_targets.labels:
            raise ValueError(f"teacher labels {soft_targets.labels} differ from the student's {labels}")
    labels = labels or labels_of(s.tags for s in [*train, *(dev or [])])
    label2id = {lab: i for i, lab in enumerate(labels)}
    unknown = {t for s in train for t in s.tags or [] if t and t not in label2id}
    if unknown:
        raise ValueError(f"training tags not in the label set: {sorted(unknown)}")
    types = {split_tag(label)[1] for label in labels}
    if settings.mention_swap > 0 and (unknown_kept := sorted(set(settings.mention_swap_kept_types) - types)):
        raise ValueError(f"SCINER_MENTION_SWAP_KEPT_TYPES names types not in the labels: {unknown_kept}")

    hf_tok = AutoTokenizer.from_pretrained(settings.base_model, use_fast=True)
    cls_id, sep_id, pad_id = _special_ids(hf_tok)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    hf_tok.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
    rust_tok = load_tokenizer(str(staging / TOKENIZER_FILE))
    unk_id = hf_tok.unk_token_id

    model = AutoModelForTokenClassification.from_pretrained(
        settings.base_model,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
    )
    head_start = transfer_head(model, settings.base_model)
    device = training_device(settings.device, torch.cuda.is_available())
    model.to(device)
    max_positions = int(getattr(model.config, "max_position_embeddings", 512))
    max_tokens = min(settings.train_max_tokens, max_positions)
    markers = case_marker_ids(hf_tok) if settings.case_markers else None
    teams, team_of_sentence = team_ids(train) if settings.crowd_layer else ([], None)
    if settings.crowd_layer and len(teams) < MIN_CROWD_TEAMS:
        log.info("crowd layer off: the gold comes from %d annotator team(s), nothing to tell apart", len(teams))
        teams, team_of_sentence = [], None
    soft_by_id = soft_targets.by_id if soft_targets is not None else None
    build = partial(
        build_examples,
        tokenizer=rust_tok,
        label2id=label2id,
        cls_id=cls_id,
        sep_id=sep_id,
        max_tokens=max_tokens,
        overlap=settings.window_stride,
        unk_id=unk_id,
        soft_by_id=soft_by_id,
        document_context=settings.document_context,
        case_markers=markers,
        teams=team_of_sentence,
        continuation=continuation_labels(labels) if settings.label_all_pieces else None,
    )
    pool = MentionPool.of(train, settings.mention_swap_kept_types) if settings.mention_swap > 0 else None
    swap_rng = random.Random(settings.seed + 1)  # its own stream: the batch order's draws stay as without swapping

    def epoch_train() -> list[Sentence]:
        if pool is None:
            return train
        return swap_mentions(train, pool, settings.mention_swap, swap_rng, keep=soft_by_id or ())

    mixing = settings.document_context and settings.document_context_share < 1
    mix_rng = random.Random(settings.seed + 2)  # its own stream, like the swaps'

    def build_epoch() -> list[Example]:
        sentences = epoch_train()
        if not mixing:
            return build(sentences)
        whole = documents_read_whole(sentences, settings.document_context_share, mix_rng)
        log.info("document context: %d documents read whole this epoch, the rest sentence by sentence", len(whole))
        return mixed_examples(build, sentences, team_of_sentence, whole)

    examples = build_epoch()
    if not examples:
        raise ValueError("no training example carries a label")
    meta = ModelMetadata(
        labels=labels,
        cls_id=cls_id,
        sep_id=sep_id,
        pad_id=pad_id,
        max_positions=max_positions,
        base_model=settings.base_model,
        unk_id=unk_id,
        context="document" if settings.document_context else "sentence",
        case_markers=markers,
    )
    # with a weight average, the average is what dev scores, early stopping keeps and the folder holds
    average = make_weight_average(model, settings.weight_ema) if settings.weight_ema > 0 else None
    kept = average.module if average is not None else model
    predictor = Predictor(TorchBackend(kept), rust_tok, meta, settings)

    rng = random.Random(settings.seed)
    lengths = [len(e.input_ids) for e in examples]
    with_entity, entity_free = split_by_entity(examples, label2id[OUTSIDE])
    empty_per_epoch = round(settings.train_empty_ratio * len(entity_free))
    total_steps = steps_per_epoch(examples, with_entity, entity_free, empty_per_epoch, settings.batch_size)
    total_steps *= settings.epochs
    groups = parameter_groups(model.named_parameters(), settings, getattr(model.config, "num_hidden_layers", None))
    crowd = make_crowd_layer(len(teams), len(labels)) if teams else None
    if crowd is not None:
        crowd.to(device)  # type: ignore[attr-defined]
        maps = list(crowd.parameters())  # type: ignore[attr-defined]
        groups.append({"params": maps, "weight_decay": 0.0, "lr": settings.crowd_layer_lr})
        log.info("crowd layer: one label map for each of %d annotator teams", len(teams))
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total_steps), total_steps)

    embeddings = model.get_input_embeddings().weight
    best_f1, best_epoch, best_state, best_eval = -1.0, 0, None, None
    history: list[dict] = []
    bar = progress_bar(total_steps, "train", "batch", progress)
    epochs_run = 0
    for epoch in range(1, settings.epochs + 1):
        epochs_run = epoch
        if (pool is not None or mixing) and epoch > 1:
            examples = build_epoch()
            lengths = [len(e.input_ids) for e in examples]
            with_entity, entity_free = split_by_entity(examples, label2id[OUTSIDE])
        model.train()
        losses = []
        chosen = epoch_examples(with_entity, entity_free, empty_per_epoch, rng)
        read_whole = [examples[i].whole for i in chosen]
        for batch_idx in epoch_batches([lengths[i] for i in chosen], read_whole, settings.batch_size, rng):
            batch = {k: v.to(device) for k, v in collate([examples[chosen[i]] for i in batch_idx], pad_id).items()}
            loss = batch_loss(model, batch, settings, crowd)
            loss.backward()
            if settings.adversarial_epsilon > 0:
                adversarial_backward(
                    embeddings, settings.adversarial_epsilon, partial(batch_loss, model, batch, settings, crowd)
                )
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if average is not None:
                average.update_parameters(model)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-50:]):.4f}")
        record: dict = {"epoch": epoch, "loss": float(np.mean(losses))}
        if dev:
            evaluation, _ = evaluate_predictor(predictor, dev)
            record["dev_micro_f1"] = evaluation.micro_f1
            log.info("epoch %d loss %.4f dev micro-F1 %.4f", epoch, record["loss"], evaluation.micro_f1)
            if evaluation.micro_f1 > best_f1:
                best_f1, best_epoch, best_eval = evaluation.micro_f1, epoch, evaluation
                best_state = copy.deepcopy(kept.state_dict())
            elif plateaued(best_f1, best_epoch, epoch, settings.patience):
                history.append(record)
                log.info("early stop: no dev gain for %d epochs", settings.patience)
                break
        else:
            best_epoch = epoch
        history.append(record)
    bar.close()
    if best_state is not None:
        kept.load_state_dict(best_state)
    kept.eval()

    kept.save_pretrained(staging / HF_DIR)
    hf_tok.save_pretrained(staging / HF_DIR)
    meta.created_at = datetime.now(UTC).isoformat(timespec="seconds")
    meta.data = data_info or {}
    meta.training = {
        **{k: v for k, v in settings.model_dump(mode="json").items() if k in TRAINING_KEYS},
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "train_sentences": len(train),
        "train_windows": len(examples),
        "train_windows_per_epoch": len(with_entity) + min(empty_per_epoch, len(entity_free)),
        "dev_sentences": len(dev or []),
        "distillation": {
            "soft_targets_sha256": soft_targets.sha256,
            "teacher": soft_targets.teacher,
            "sentences": len(soft_targets),
            "alpha": settings.distill_alpha,
            "temperature": settings.distill_temperature,
        }
        if soft_targets is not None
        else None,
        "crowd_layer_teams": crowd_layer_summary(crowd, teams, labels) if crowd is not None else None,
        "head_start": head_start,
        "mention_pool": len(pool) if pool is not None else None,
        "history": history,
    }
    if best_eval is not None:
        meta.metrics = {"dev_torch": best_eval.as_flat_metrics()}
    write_metadata(staging, meta)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    seconds = time.perf_counter() - started
    log.info("trained %s in %.1fs (best epoch %d)", out_dir, seconds, best_epoch)
    return TrainResult(out_dir, best_epoch, epochs_run, best_eval, history, seconds)


# the settings a training run depends on: stored in the model folder, and logged as every round's run params
TRAINING_KEYS = (
    "base_model",
    "epochs",
    "learning_rate",
    "head_lr_factor",
    "layer_lr_decay",
    "batch_size",
    "warmup_ratio",
    "weight_decay",
    "patience",
    "seed",
    "train_max_tokens",
    "window_stride",
    "train_empty_ratio",
    "document_context",
    "document_context_share",
    "label_all_pieces",
    "case_markers",
    "crowd_layer",
    "crowd_layer_lr",
    "label_smoothing",
    "weight_ema",
    "adversarial_epsilon",
    "rdrop_weight",
    "mention_swap",
    "mention_swap_kept_types",
)


def training_summary(result: TrainResult) -> dict:
    out = asdict(result)
    out["model_dir"] = str(result.model_dir)
    return out
