"""Carry an intermediate task's classifier head over to SciNER's labels (NER-BERT keeps the encoder; this keeps
what the head learned too, for the types the two schemes share).

``sciner pretrain-ner --map-types scierc`` saves the SciERC head beside the encoder with a type map
(Task -> TaskName, Method -> MethodName, Metric -> MetricName, Material -> DatasetName). A fine-tune from that
encoder starts its ``O``, ``B-``/``I-`` rows of mapped types from the SciERC rows; the other rows (hyperparameters,
metric values) start as a fresh head does.

Measured on 35 gold documents at three seeds (docs/quality.md, session 34): the carried-over head makes the model
more precise before its O bias (unbiased F1 +1.1 to +1.6 over SciERC's encoder alone) and no better after it
(-0.2 on average, cross-fitted), so it is an option, not a default.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sciner.labels import OUTSIDE, split_tag

log = logging.getLogger(__name__)

HEAD_FILE = "sciner_intermediate_head.safetensors"
HEAD_INFO_FILE = "sciner_intermediate_head.json"
SCIERC_TYPE_MAP: dict[str, str] = {
    "Task": "TaskName",
    "Method": "MethodName",
    "Metric": "MetricName",
    "Material": "DatasetName",
}
PRESETS: dict[str, dict[str, str]] = {"scierc": SCIERC_TYPE_MAP}


def parse_type_map(text: str) -> dict[str, str]:
    """``"scierc"`` or ``"Task=TaskName,Method=MethodName"`` -> ``{"Task": "TaskName", ...}``."""
    text = text.strip()
    if text in PRESETS:
        return dict(PRESETS[text])
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = (part.strip() for part in pair.partition("="))
        if not sep or not source or not target:
            raise ValueError(f"type map entry {pair!r} is not SOURCE=TARGET (or use a preset: {sorted(PRESETS)})")
        if source in mapping:
            raise ValueError(f"type {source!r} is mapped twice")
        mapping[source] = target
    if not mapping:
        raise ValueError("empty type map")
    if len(set(mapping.values())) < len(mapping):
        raise ValueError("two source types map onto the same target type")
    return mapping


def mapped_rows(source_labels: list[str], target_labels: list[str], type_map: dict[str, str]) -> dict[int, int]:
    """Target row -> source row: ``O`` to ``O``, ``B-X``/``I-X`` to ``B-Y``/``I-Y`` where ``type_map[X] == Y``."""
    source_index = {label: i for i, label in enumerate(source_labels)}
    target_to_source = {target: source for source, target in type_map.items()}
    rows: dict[int, int] = {}
    for t_idx, label in enumerate(target_labels):
        prefix, etype = split_tag(label)
        if label == OUTSIDE:
            wanted = OUTSIDE
        elif etype in target_to_source:
            wanted = f"{prefix}-{target_to_source[etype]}"
        else:
            continue
        if wanted in source_index:
            rows[t_idx] = source_index[wanted]
    return rows


def config_labels(model: Any) -> list[str]:
    """A token classifier's labels in row order, from its config."""
    return [model.config.id2label[i] for i in range(len(model.config.id2label))]


def save_head(model: Any, out: Path, type_map: dict[str, str]) -> None:
    """Write ``model``'s classifier (weight, bias) and its labels with ``type_map`` into the folder ``out``."""
    from safetensors.torch import save_file

    head = model.classifier
    save_file(
        {"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
        str(out / HEAD_FILE),
    )
    info = {"labels": config_labels(model), "type_map": type_map}
    (out / HEAD_INFO_FILE).write_text(json.dumps(info, indent=2))


def transfer_head(model: Any, encoder_dir: str | Path) -> dict | None:
    """Start ``model``'s classifier rows from the head saved in ``encoder_dir``, where one is saved.

    Returns what was carried over (for the model's metadata), or None when the folder has no saved head."""
    import torch
    from safetensors.torch import load_file

    folder = Path(encoder_dir)
    if not (folder / HEAD_FILE).is_file() or not (folder / HEAD_INFO_FILE).is_file():
        return None
    info = json.loads((folder / HEAD_INFO_FILE).read_text())
    saved = load_file(str(folder / HEAD_FILE))
    head = model.classifier
    if tuple(saved["weight"].shape[1:]) != tuple(head.weight.shape[1:]):
        log.warning("saved head in %s does not fit this encoder's width; the head starts fresh", folder)
        return None
    target_labels = config_labels(model)
    rows = mapped_rows(info["labels"], target_labels, info["type_map"])
    with torch.no_grad():
        for t_idx, s_idx in rows.items():
            head.weight[t_idx] = saved["weight"][s_idx].to(head.weight.dtype)
            head.bias[t_idx] = saved["bias"][s_idx].to(head.bias.dtype)
    carried = sorted(target_labels[t] for t in rows)
    log.info("classifier rows %s start from the intermediate task's head", carried)
    return {"from": str(folder), "type_map": info["type_map"], "rows": carried}
