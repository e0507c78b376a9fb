"""R-Drop: the symmetric KL between two readings by hand, and the loss of a batch read twice
(tests/test_regularisers.py: the model folder says it was trained so)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from sciner.settings import Settings
from training.consistency import rdrop_loss, symmetric_kl


def test_the_symmetric_kl_of_two_readings_matches_a_hand_computation():
    # one word, two labels: p = (0.5, 0.5) from logits (0, 0); q = (0.8, 0.2) from logits (log 4, 0)
    a = torch.tensor([[[0.0, 0.0]]])
    b = torch.tensor([[[math.log(4.0), 0.0]]])
    p, q = (0.5, 0.5), (0.8, 0.2)
    kl_pq = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    kl_qp = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    mask = torch.tensor([[True]])
    assert symmetric_kl(a, b, mask).item() == pytest.approx((kl_pq + kl_qp) / 2, rel=1e-6)
    assert symmetric_kl(a, b, mask).item() == pytest.approx(symmetric_kl(b, a, mask).item())


def test_only_labelled_words_count_and_none_gives_zero():
    a = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])
    b = torch.tensor([[[0.0, 0.0], [-5.0, 5.0]]])
    assert symmetric_kl(a, b, torch.tensor([[True, False]])).item() == 0.0
    assert symmetric_kl(a, b, torch.tensor([[False, True]])).item() > 1.0
    assert symmetric_kl(a, b, torch.tensor([[False, False]])).item() == 0.0


class _ReadingModel(torch.nn.Module):
    """Logits from a lookup table, shifted per row by ``shift[row]``: a stand-in for dropout that gives the
    batch's two stacked copies different readings."""

    def __init__(self, table: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table)
        self.shift = shift

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids] + self.shift[: len(input_ids), None, :])


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def test_the_batch_is_read_twice_and_the_loss_adds_their_disagreement():
    table = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    shift = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 1.0]])
    model = _ReadingModel(table, shift)
    batch = {
        "input_ids": torch.tensor([[0, 1], [1, 0]]),
        "attention_mask": torch.ones(2, 2, dtype=torch.long),
        "labels": torch.tensor([[0, 1], [1, -100]]),
    }
    loss = rdrop_loss(model, batch, 2.0, lambda logits: _cross_entropy(logits, batch["labels"]))

    first = table[batch["input_ids"]]
    second = first + shift[2:, None, :]
    expected = (_cross_entropy(first, batch["labels"]) + _cross_entropy(second, batch["labels"])) / 2
    expected = expected + 2.0 * symmetric_kl(first, second, batch["labels"] != -100)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert model.table.grad is not None and model.table.grad.abs().sum() > 0


def test_two_identical_readings_cost_only_the_task_loss():
    table = torch.tensor([[1.0, -1.0], [0.0, 3.0]])
    model = _ReadingModel(table, torch.zeros(4, 2))
    batch = {
        "input_ids": torch.tensor([[0, 1], [1, 1]]),
        "attention_mask": torch.ones(2, 2, dtype=torch.long),
        "labels": torch.tensor([[0, 1], [0, 1]]),
    }
    loss = rdrop_loss(model, batch, 5.0, lambda logits: _cross_entropy(logits, batch["labels"]))
    assert loss.item() == pytest.approx(_cross_entropy(table[batch["input_ids"]], batch["labels"]).item())


def test_the_weight_cannot_be_negative():
    with pytest.raises(ValueError):
        Settings(rdrop_weight=-1.0)
