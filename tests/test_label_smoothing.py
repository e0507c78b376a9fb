"""Label smoothing of the gold cross-entropy: what it computes, and that it is off unless asked for."""

from __future__ import annotations

import math

import pytest
import torch

from sciner.settings import Settings
from tests.fixed_logits import FixedLogits
from training.batch_loss import batch_loss
from training.distill import distillation_loss

LOGITS = [[[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], [[0.0, 1.0, 3.0], [1.0, 2.0, 0.0]]]
LABELS = [[0, -100], [2, 1]]  # the second word piece of the first sentence carries no label


def _smoothed_ce_by_hand(eps: float) -> float:
    """Mean over labelled positions of (1 - eps) * -log p(label) + eps * mean over labels of -log p(k)."""
    losses = []
    for row, labels in zip(LOGITS, LABELS, strict=True):
        for logits, label in zip(row, labels, strict=True):
            if label == -100:
                continue
            log_z = math.log(sum(math.exp(v) for v in logits))
            nll = [log_z - v for v in logits]
            losses.append((1 - eps) * nll[label] + eps * sum(nll) / len(nll))
    return sum(losses) / len(losses)


def _batch() -> dict:
    labels = torch.tensor(LABELS)
    return {"input_ids": torch.zeros(2, 2), "attention_mask": torch.ones(2, 2), "labels": labels}


def test_the_default_trains_on_the_model_s_own_unsmoothed_loss():
    assert Settings().label_smoothing == 0.0
    model = FixedLogits(torch.tensor(LOGITS))
    assert float(batch_loss(model, _batch(), Settings())) == pytest.approx(_smoothed_ce_by_hand(0.0), rel=1e-6)


def test_smoothed_gold_loss_on_a_toy_batch_equals_a_hand_computation():
    model = FixedLogits(torch.tensor(LOGITS))
    got = float(batch_loss(model, _batch(), Settings(label_smoothing=0.1)))
    assert got == pytest.approx(_smoothed_ce_by_hand(0.1), rel=1e-6)
    assert got != pytest.approx(_smoothed_ce_by_hand(0.0), rel=1e-3), "smoothing changes the loss"


def test_smoothing_touches_the_gold_term_of_distillation_and_leaves_the_teacher_s_alone():
    logits, labels = torch.tensor(LOGITS), torch.tensor(LABELS)
    soft = torch.full((2, 2, 3), 1 / 3)
    no_gold = torch.full((2, 2), -100)
    teacher_only = distillation_loss(logits, no_gold, soft, torch.ones(2, 2, dtype=torch.bool), 0.5, 2.0)
    smoothed_teacher_only = distillation_loss(
        logits, no_gold, soft, torch.ones(2, 2, dtype=torch.bool), 0.5, 2.0, label_smoothing=0.1
    )
    assert float(smoothed_teacher_only) == pytest.approx(float(teacher_only))

    gold_only = distillation_loss(
        logits, labels, soft, torch.zeros(2, 2, dtype=torch.bool), 0.5, 2.0, label_smoothing=0.1
    )
    assert float(gold_only) == pytest.approx(0.5 * _smoothed_ce_by_hand(0.1), rel=1e-6)


def test_smoothing_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="label_smoothing"):
        Settings(label_smoothing=1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        Settings(label_smoothing=-0.1)
