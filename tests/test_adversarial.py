"""Adversarial training on the embeddings (FGM): the perturbation's size and direction, the accumulated
gradient and the exact restore (tests/test_regularisers.py: the model folder says it was trained so)."""

from __future__ import annotations

import pytest
import torch

from sciner.settings import Settings
from training.adversarial import adversarial_backward, embedding_perturbation


def test_the_perturbation_has_the_size_epsilon_along_the_gradient():
    grad = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    delta = embedding_perturbation(grad, 0.5)
    assert delta is not None
    assert torch.linalg.vector_norm(delta).item() == pytest.approx(0.5)
    assert torch.allclose(delta, torch.tensor([[0.3, 0.0], [0.0, 0.4]]))


def test_no_perturbation_without_a_usable_gradient():
    assert embedding_perturbation(torch.zeros(2, 2), 1.0) is None
    assert embedding_perturbation(torch.tensor([[float("nan"), 1.0]]), 1.0) is None


def test_the_second_pass_adds_the_gradient_at_the_perturbed_point_and_restores_the_weights():
    # loss = sum(w * x)**2 / 2 for one "embedding" row w: its gradient is (w . x) x
    weight = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    x = torch.tensor([3.0, 4.0])

    def loss_fn():
        return (weight * x).sum() ** 2 / 2

    loss_fn().backward()
    clean_grad = weight.grad.clone()
    assert torch.allclose(clean_grad, 11.0 * x)  # w . x = 11
    adversarial = adversarial_backward(weight, 1.0, loss_fn)

    moved = torch.tensor([1.0, 2.0]) + x / 5.0  # epsilon * g / ||g||, g parallel to x, ||x|| = 5
    assert adversarial == pytest.approx(float((moved @ x) ** 2 / 2))
    assert torch.allclose(weight.grad, clean_grad + (moved @ x) * x)
    assert torch.equal(weight.detach(), torch.tensor([1.0, 2.0])), "the weights are put back exactly"


def test_without_a_gradient_nothing_runs():
    weight = torch.nn.Parameter(torch.ones(2))
    calls = []
    assert adversarial_backward(weight, 1.0, lambda: calls.append(1) or weight.sum()) is None
    assert calls == []


def test_epsilon_cannot_be_negative():
    with pytest.raises(ValueError):
        Settings(adversarial_epsilon=-0.1)
