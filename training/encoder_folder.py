"""Write an encoder folder that ``SCINER_BASE_MODEL`` can point at: a model's encoder without its task head,
its tokenizer and a lineage file saying how it was made, all or nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sciner.model_dir import atomic_write_text


def write_encoder_folder(
    model: Any,
    tokenizer: Any,
    out: Path,
    lineage_file: str,
    lineage: dict,
    extra: Callable[[Path], None] | None = None,
) -> None:
    """Save ``model.base_model`` (the head dropped) and ``tokenizer`` with ``lineage`` as ``lineage_file``:
    built in a staging folder beside ``out`` and renamed over it, so ``out`` is never half-written. ``extra``
    writes more files into the staging folder before the rename."""
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    encoder = model.base_model
    # the config may still name the earlier task's labels or head; the next fine-tune replaces them
    encoder.config.architectures = [type(encoder).__name__]
    encoder.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    atomic_write_text(staging / lineage_file, json.dumps(lineage, indent=2, sort_keys=True))
    if extra is not None:
        extra(staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
