"""Adversarial training on the word-piece embeddings (FGM, ``SCINER_ADVERSARIAL_EPSILON``).

Miyato et al. (2017), "Adversarial Training Methods for Semi-Supervised Text Classification": after the
ordinary backward pass, the embedding matrix is moved by ``epsilon * g / ||g||`` (``g`` its gradient, the
direction that raises the loss most), the loss of the same batch is computed and back-propagated again so
that both gradients add up, and the embeddings are put back before the optimizer steps. The model learns to
keep its labels under the worst small change of its input pieces, a regulariser against the spelling
variants of names. Each step costs a second forward and backward pass (1.55x the training time measured on 2 cores:
59 against 38 min for two gold epochs, docs/benchmarks.md).
torch is imported where it is used, as in training/trainer.py, which imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def embedding_perturbation(grad: torch.Tensor, epsilon: float) -> torch.Tensor | None:
    """``epsilon * grad / ||grad||`` (Frobenius norm over the whole matrix); None when the gradient is zero
    or not finite, where no direction raises the loss."""
    import torch

    norm = torch.linalg.vector_norm(grad)
    if not torch.isfinite(norm) or norm == 0:
        return None
    return epsilon * grad / norm


def adversarial_backward(
    embeddings: torch.nn.Parameter, epsilon: float, loss_fn: Callable[[], torch.Tensor]
) -> float | None:
    """With ``embeddings.grad`` filled by the ordinary backward pass: perturb, back-propagate ``loss_fn()``
    once more (gradients accumulate), restore the exact weights. Returns the adversarial loss, or None when
    the embeddings have no usable gradient (nothing was perturbed)."""
    import torch

    if embeddings.grad is None:
        return None
    delta = embedding_perturbation(embeddings.grad, epsilon)
    if delta is None:
        return None
    saved = embeddings.detach().clone()
    with torch.no_grad():
        embeddings.add_(delta)
    try:
        loss = loss_fn()
        loss.backward()
    finally:
        with torch.no_grad():
            embeddings.copy_(saved)
    return float(loss.item())
