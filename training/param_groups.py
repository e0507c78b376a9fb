"""AdamW parameter groups of a fine-tune: which parameters decay, and at what learning rate each learns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sciner.settings import Settings

# parameters without weight decay: biases and normalisation weights (BERT's and MPNet's names)
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight")
_HEAD_PREFIX = "classifier."
_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """How deep a parameter sits: 0 for the embeddings, ``k + 1`` for transformer layer ``k``, and
    ``num_layers + 1`` for everything above (the classification head, MPNet's shared relative-position
    bias)."""
    match = _LAYER.search(name)
    if match:
        return int(match.group(1)) + 1
    return 0 if ".embeddings." in f".{name}" else num_layers + 1


def parameter_groups(
    named_parameters: Iterable[tuple[str, Any]], settings: Settings, num_layers: int | None = None
) -> list[dict]:
    """AdamW groups: no weight decay on biases and norms; the new token-classification head at
    ``learning_rate * head_lr_factor`` (a randomly initialised head beside a pre-trained body). With
    ``layer_lr_decay`` below 1 (and the encoder's ``num_layers``), each layer learns at ``decay`` times the
    rate of the layer above it, the embeddings slowest (layer-wise learning-rate decay: the lower layers'
    general features move least)."""
    decay = settings.layer_lr_decay if num_layers else 1.0
    groups: dict[tuple[bool, bool, int], list] = {}
    for name, param in named_parameters:
        # the top layer and whatever sits above it learn at learning_rate; each layer below at decay times more slowly
        below_top = max(0, num_layers - layer_depth(name, num_layers)) if decay != 1.0 and num_layers else 0
        groups.setdefault((name.startswith(_HEAD_PREFIX), name.endswith(NO_DECAY), below_top), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else settings.weight_decay,
            "lr": settings.learning_rate * (settings.head_lr_factor if head else decay**below_top),
        }
        for (head, no_decay, below_top), params in sorted(groups.items())
    ]
