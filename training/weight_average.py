"""An exponential moving average of the weights while training (``SCINER_WEIGHT_EMA``).

The average, not the last step's weights, is what the trainer evaluates on dev, keeps and exports: the
cheap form of averaging two students (docs/quality.md, ``soup-3ep``), at the cost of one copy of the weights in
memory. Measured at 0.998 on one epoch: no gain (-0.35 [-1.14, +0.47] dev F1), so off by default.
PyTorch's own ``AveragedModel`` keeps the copy; the decay warms up (the first update copies the weights, the next
keeps 2/11 of the average) so that the random classifier head and the first steps are forgotten within a few hundred
steps. torch is imported where it is used, as in training/trainer.py, which imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch.optim.swa_utils import AveragedModel


def ema_decay_at(decay: float, updates: int) -> float:
    """The share of the average kept when it already holds ``updates`` (n) updates: ``min(decay, (1 + n) / (10 + n))``.

    Early on the average follows the model closely (2/11 when it holds one update), later it keeps ``decay`` of
    itself. ``AveragedModel`` copies the weights at the first update and calls this from the second on.
    """
    return min(decay, (1 + updates) / (10 + updates))


def make_weight_average(model: torch.nn.Module, decay: float) -> AveragedModel:
    """``torch.optim.swa_utils.AveragedModel`` of ``model`` with the warmed-up EMA; buffers are not averaged
    (the encoders' buffers are position ids, integers that an average would corrupt)."""
    import torch
    from torch.optim.swa_utils import AveragedModel

    @torch.no_grad()
    def ema_update(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor | int) -> torch.Tensor:
        keep = ema_decay_at(decay, int(num_averaged))
        return keep * averaged + (1.0 - keep) * current

    return AveragedModel(model, avg_fn=ema_update, use_buffers=False)
