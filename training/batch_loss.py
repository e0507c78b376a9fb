"""One training step's arithmetic: a batch of examples as tensors, and its loss (cross-entropy through the
crowd layer's team maps, distillation against a teacher, R-Drop's two readings)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from sciner.encoding import pad_batch
from sciner.labels import IGNORE_INDEX
from sciner.settings import Settings
from training.consistency import rdrop_loss
from training.crowd_layer import NO_TEAM
from training.distill import distillation_loss
from training.features import Example


def collate(batch: list[Example], pad_id: int) -> dict:
    """``batch`` padded into tensors: input ids, attention mask, labels (``-100`` where unscored), the teams
    where any example has one, and the teacher's distributions where any example carries them."""
    import torch

    ids, mask = pad_batch([e.input_ids for e in batch], pad_id)
    labels = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
    for i, e in enumerate(batch):
        labels[i, : len(e.labels)] = e.labels
    out = {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(labels),
    }
    if any(e.team != NO_TEAM for e in batch):
        out["teams"] = torch.tensor([e.team for e in batch], dtype=torch.long)
    with_soft = [e for e in batch if e.soft]
    if with_soft:
        n_labels = len(with_soft[0].soft[0][1])  # type: ignore[index]
        soft = np.zeros((*ids.shape, n_labels), dtype=np.float32)
        soft_mask = np.zeros(ids.shape, dtype=bool)
        for i, e in enumerate(batch):
            for pos, probs in e.soft or []:
                soft[i, pos], soft_mask[i, pos] = probs, True
        out["soft"], out["soft_mask"] = torch.from_numpy(soft), torch.from_numpy(soft_mask)
    return out


def batch_loss(model: object, batch: dict, settings: Settings, crowd_layer: object | None = None) -> object:
    """The model's cross-entropy, or with teacher distributions in the batch the distillation loss. With a
    ``crowd_layer`` the gold labels are scored through each sentence's team map (the teacher, if any,
    still scores the shared logits). With ``settings.rdrop_weight`` the batch is read twice and the two
    readings are held to agree (training/consistency.py)."""
    task_loss = partial(loss_of_logits, batch=batch, settings=settings, crowd_layer=crowd_layer)
    if settings.rdrop_weight > 0:
        return rdrop_loss(model, batch, settings.rdrop_weight, task_loss)
    return task_loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits)  # type: ignore[operator]


def loss_of_logits(logits: Any, batch: dict, settings: Settings, crowd_layer: object | None = None) -> object:
    """The task loss of one reading of ``batch``: cross-entropy on the gold labels (through the sentence's
    team map where there is a crowd layer), or the distillation loss where the batch carries a teacher's."""
    import torch.nn.functional as F

    teams = batch.get("teams")
    mapped = crowd_layer is not None and teams is not None
    label_logits = crowd_layer(logits, teams) if mapped else logits  # type: ignore[operator]
    if "soft" not in batch:
        return F.cross_entropy(
            label_logits.reshape(-1, label_logits.shape[-1]),
            batch["labels"].reshape(-1),
            ignore_index=IGNORE_INDEX,
            label_smoothing=settings.label_smoothing,
        )
    return distillation_loss(
        logits,
        batch["labels"],
        batch["soft"],
        batch["soft_mask"],
        settings.distill_alpha,
        settings.distill_temperature,
        label_logits=label_logits,
        label_smoothing=settings.label_smoothing,
    )
