"""Domain-adaptive pre-training: more masked-language-model training of the base encoder on the domain's
own text (the gold train sentences and the anthology's abstracts, no labels), before any NER fine-tune.

The embedded encoder (all-MiniLM-L6-v2) was last trained for sentence embeddings, not for words in
context, and never on this domain's writing; a pass of masked-word prediction over scientific text
(Gururangan et al. 2020, "Don't Stop Pretraining") is the standard remedy. The text is read exactly as
fine-tuning reads it (:func:`sciner.encoding.word_pieces`, capital markers included, so their three
embeddings learn what a capital means before the NER head needs it). Sentences of one document are
packed together into windows of ``train_max_tokens`` pieces; 15% of the pieces are masked (80% ``[MASK]``,
10% a random piece, 10% kept: ``transformers``' own collator) and the loss is computed at the masked
positions only (the vocabulary projection at every position would double the step's cost).

The result is an ordinary Hugging Face encoder folder, as ``sciner pretrain-ner`` writes: point
``SCINER_BASE_MODEL`` at it and every later fine-tune starts from it at no cost per round.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sciner.encoding import tokenizer_copy, word_pieces
from sciner.settings import Settings
from training.encoder_folder import write_encoder_folder
from training.param_groups import parameter_groups
from training.progress import progress_bar
from training.trainer import case_marker_ids, seed_everything, training_device

log = logging.getLogger(__name__)

LINEAGE_FILE = "sciner_adaptation.json"


@dataclass(frozen=True)
class Chunk:
    """One packed training window: ``[CLS]`` + consecutive sentences' pieces + ``[SEP]``."""

    input_ids: list[int]


def pack_sentences(
    pieces: Sequence[Sequence[int]], docs: Sequence[str | None], max_tokens: int, cls_id: int, sep_id: int
) -> list[Chunk]:
    """Pack consecutive sentences of one document into windows of at most ``max_tokens`` pieces (specials
    included); a new document starts a new window, and a sentence longer than a window is cut into
    windows of its own."""
    room = max_tokens - 2
    chunks: list[Chunk] = []
    current: list[int] = []
    current_doc: str | None = None

    def flush() -> None:
        if current:
            chunks.append(Chunk([cls_id, *current, sep_id]))
            current.clear()

    for ids, doc in zip(pieces, docs, strict=True):
        if doc != current_doc or doc is None:
            flush()
            current_doc = doc
        if len(current) + len(ids) > room:
            flush()
        for start in range(0, len(ids), room):
            part = ids[start : start + room]
            if len(current) + len(part) > room:
                flush()
            current.extend(part)
    flush()
    return chunks


def masked_lm_head(model: Any) -> Any:
    """The prediction head of a ``*ForMaskedLM`` model: its one child besides the encoder (``cls`` for
    BERT, ``lm_head`` for MPNet / RoBERTa). It maps hidden states to vocabulary logits."""
    heads = [m for name, m in model.named_children() if name != model.base_model_prefix]
    if len(heads) != 1:
        raise ValueError(f"{type(model).__name__}: expected one head beside the encoder, found {len(heads)}")
    return heads[0]


def masked_lm_loss(model: Any, head: Any, batch: dict[str, Any]) -> Any:
    """Cross-entropy at the masked positions only (labels other than -100)."""
    import torch.nn.functional as F

    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    labels = batch["labels"]
    where = labels != -100
    logits = head(hidden[where])
    return F.cross_entropy(logits, labels[where])


def _batches(chunks: list[Chunk], size: int, rng: random.Random) -> list[list[Chunk]]:
    order = list(range(len(chunks)))
    rng.shuffle(order)
    return [[chunks[i] for i in order[k : k + size]] for k in range(0, len(order), size)]


def head_only_parameters(model: Any, head: Any) -> list[Any]:
    """The masked-LM head's own parameters: those it does not share with the encoder (BERT's and MPNet's
    vocabulary projection is tied to the word embeddings; the transform and the output bias are the head's)."""
    shared = {id(p) for p in model.base_model.parameters()}
    return [p for p in head.parameters() if id(p) not in shared]


def warm_up_head(
    model: Any, head: Any, collate: Any, batches: Sequence[list[Chunk]], learning_rate: float, device: Any
) -> list[float]:
    """Train the head alone on ``batches`` (the encoder frozen, its gradients not even computed), so that the
    encoder's first masked-LM steps follow a head that predicts words rather than noise; returns the losses."""
    import torch

    encoder = list(model.base_model.parameters())
    flags = [p.requires_grad for p in encoder]
    for p in encoder:
        p.requires_grad_(False)
    own = head_only_parameters(model, head)
    optimizer = torch.optim.AdamW(own, lr=learning_rate)
    try:
        return [masked_lm_step(model, head, collate, group, device, optimizer, own) for group in batches]
    finally:
        for p, flag in zip(encoder, flags, strict=True):
            p.requires_grad_(flag)


def masked_lm_step(
    model: Any, head: Any, collate: Any, group: list[Chunk], device: Any, optimizer: Any, clipped: Any
) -> float:
    """One optimizer step on ``group`` (masked anew by ``collate``), gradients of ``clipped`` clipped to norm 1;
    returns the batch's loss."""
    import torch

    batch = collate([{"input_ids": c.input_ids} for c in group])
    batch = {k: v.to(device) for k, v in batch.items()}
    loss = masked_lm_loss(model, head, batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(clipped, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def held_out_loss(model: Any, head: Any, collate: Any, chunks: list[Chunk], batch_size: int, seed: int) -> float:
    """Mean masked-LM loss on ``chunks`` with a fixed masking (the same before and after training)."""
    import torch

    if not chunks:
        return float("nan")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model.eval()
    total, n = 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for k in range(0, len(chunks), batch_size):
            batch = collate([{"input_ids": c.input_ids} for c in chunks[k : k + batch_size]])
            batch = {key: v.to(device) for key, v in batch.items()}
            masked = int((batch["labels"] != -100).sum())
            if masked:
                total += float(masked_lm_loss(model, head, batch)) * masked
                n += masked
    torch.random.set_rng_state(state)
    model.train()
    return total / n if n else float("nan")


def adapt_encoder(
    texts: Sequence[tuple[list[str], str | None]],
    out: Path,
    settings: Settings,
    sources: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict:
    """Masked-LM training of ``settings.base_model`` on ``texts`` (pre-split sentences with their document
    ids, in reading order); writes the encoder (no head) and its tokenizer to ``out`` atomically and
    returns the lineage stored beside them (``sciner_adaptation.json``)."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling
    from transformers import logging as hf_logging
    from transformers.optimization import get_linear_schedule_with_warmup

    if not texts:
        raise ValueError("no text to adapt the encoder on")
    started = time.perf_counter()
    seed_everything(settings.seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    hf_tok = AutoTokenizer.from_pretrained(settings.base_model, use_fast=True)
    if hf_tok.mask_token_id is None:
        raise ValueError(f"{settings.base_model}: the tokenizer has no mask token")
    rust_tok = tokenizer_copy(hf_tok.backend_tokenizer)
    markers = case_marker_ids(hf_tok) if settings.case_markers else None
    pieces = [p.ids for p in word_pieces(rust_tok, [words for words, _ in texts], hf_tok.unk_token_id, markers)]
    chunks = pack_sentences(
        pieces, [doc for _, doc in texts], settings.train_max_tokens, hf_tok.cls_token_id, hf_tok.sep_token_id
    )
    rng = random.Random(settings.seed)
    rng.shuffle(chunks)
    n_held = min(settings.adapt_held_out_windows, len(chunks) // 10)
    held, chunks = chunks[:n_held], chunks[n_held:]

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights newly initialized": a sentence encoder has no MLM head
    try:
        model = AutoModelForMaskedLM.from_pretrained(settings.base_model)
    finally:
        hf_logging.set_verbosity(verbosity)
    device = training_device(settings.device, torch.cuda.is_available())
    model.to(device)
    model.train()
    head = masked_lm_head(model)
    collate = DataCollatorForLanguageModeling(
        hf_tok, mlm=True, mlm_probability=settings.adapt_mask_probability, return_tensors="pt"
    )
    loss_before = held_out_loss(model, head, collate, held, settings.batch_size, settings.seed)
    held_out = {"before": loss_before}
    if settings.adapt_head_warmup_steps:
        warm: list[list[Chunk]] = []
        while len(warm) < settings.adapt_head_warmup_steps:  # more passes than one only on tiny text
            warm.extend(_batches(chunks, settings.adapt_batch_size, rng))
        del warm[settings.adapt_head_warmup_steps :]
        head_losses = warm_up_head(model, head, collate, warm, settings.adapt_head_learning_rate, device)
        held_out["after_head_warmup"] = held_out_loss(model, head, collate, held, settings.batch_size, settings.seed)
        log.info(
            "masked-LM head warmed up alone for %d steps: held-out loss %.3f -> %.3f",
            len(head_losses),
            loss_before,
            held_out["after_head_warmup"],
        )

    steps_per_epoch = math.ceil(len(chunks) / settings.adapt_batch_size)
    total_steps = steps_per_epoch * settings.adapt_epochs
    if settings.adapt_max_steps:
        total_steps = min(total_steps, settings.adapt_max_steps)
    # the fine-tune's groups (no decay on biases and norms) at the masked-LM rate; the MLM head is no "classifier."
    at_rate = settings.model_copy(update={"learning_rate": settings.adapt_learning_rate})
    optimizer = torch.optim.AdamW(parameter_groups(model.named_parameters(), at_rate))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total_steps), total_steps)
    bar = progress_bar(total_steps, "adapt", "batch", progress)
    step, running = 0, []
    try:
        for _epoch in range(settings.adapt_epochs):
            for group in _batches(chunks, settings.adapt_batch_size, rng):
                if step >= total_steps:
                    break
                running.append(masked_lm_step(model, head, collate, group, device, optimizer, model.parameters()))
                scheduler.step()
                step += 1
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{sum(running[-50:]) / len(running[-50:]):.3f}")
    finally:
        bar.close()
    loss_after = held_out_loss(model, head, collate, held, settings.batch_size, settings.seed)

    lineage = {
        "base_model": settings.base_model,
        "data": sources or {},
        "sentences": len(texts),
        "windows": len(chunks),
        "held_out_windows": len(held),
        "case_markers": markers,
        "steps": step,
        "batch_size": settings.adapt_batch_size,
        "learning_rate": settings.adapt_learning_rate,
        "mask_probability": settings.adapt_mask_probability,
        "head_warmup_steps": settings.adapt_head_warmup_steps,
        "head_learning_rate": settings.adapt_head_learning_rate if settings.adapt_head_warmup_steps else None,
        "held_out_mlm_loss": {**held_out, "after": loss_after},
        "train_mlm_loss_last_100": sum(running[-100:]) / max(1, len(running[-100:])),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_encoder_folder(model, hf_tok, out, LINEAGE_FILE, lineage)
    log.info("adapted encoder in %s: held-out masked-LM loss %.3f -> %.3f", out, loss_before, loss_after)
    return {"encoder_dir": str(out), **lineage}
