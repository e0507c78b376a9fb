"""Consistency between two dropout passes (R-Drop, ``SCINER_RDROP_WEIGHT``).

Liang et al. (2021), "R-Drop: Regularized Dropout for Neural Networks": each batch is read twice in one
forward pass (the batch stacked on itself, so each copy draws its own dropout masks); the loss is the task
loss of both copies, averaged, plus ``weight`` times the symmetric KL divergence between the two copies' label
distributions at every labelled word. The model is taught to give the same answer whichever sub-network
dropout leaves it, which is what inference (no dropout) reads. A step computes twice the activations: 1.7x
the training time measured on 2 cores (31 against 18 min for one gold epoch, docs/quality.md, session 42).
The divergence is taken on the shared logits, the ones the predictor decodes (before any crowd-layer team map).
Measured for one epoch only: over two (seed 43, session 43) dev F1 fell from 0.533 to 0.501 during the second,
the least consistently labelled class (TaskName) going to ``O`` first.
torch is imported where it is used, as in training/trainer.py, which imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sciner.labels import IGNORE_INDEX

if TYPE_CHECKING:
    import torch


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(KL(p_a || p_b) + KL(p_b || p_a)) / 2`` summed over labels, averaged over the positions where
    ``mask`` is true (0 where none is)."""
    import torch.nn.functional as F

    log_a = F.log_softmax(logits_a[mask].float(), dim=-1)
    log_b = F.log_softmax(logits_b[mask].float(), dim=-1)
    if log_a.shape[0] == 0:
        return logits_a.sum() * 0.0
    a_to_b = (log_a.exp() * (log_a - log_b)).sum(-1)
    b_to_a = (log_b.exp() * (log_b - log_a)).sum(-1)
    return ((a_to_b + b_to_a) / 2).mean()


def rdrop_loss(
    model: object, batch: dict, weight: float, task_loss: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """The batch read twice in one pass: the mean of ``task_loss`` over both copies' logits, plus ``weight``
    times their symmetric KL at the labelled positions."""
    import torch

    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = model(input_ids=torch.cat([ids, ids]), attention_mask=torch.cat([mask, mask])).logits  # type: ignore[operator]
    first, second = logits.chunk(2)
    task = (task_loss(first) + task_loss(second)) / 2
    return task + weight * symmetric_kl(first, second, batch["labels"] != IGNORE_INDEX)
