"""Model soup: one model whose weights are the uniform average of several fine-tuned models.

Models fine-tuned from the same pre-trained encoder tend to lie in one basin of the loss, so the
average of their weights is itself a good model, often better than each member, and it costs no more
to serve than one of them (Wortsman et al. 2022, "Model soups"). sciner's students of different
recipes (teachers, epochs, capital markers) are such models.

Members must share the label set, the architecture (config and every weight's shape) and the
tokenizer's vocabulary. The soup reads its input as its first member does (capital markers, document
context): that member leads. Pure checks and averaging first, then the one function that writes a
model folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from sciner.model_dir import HF_DIR, METADATA_FILE, ONNX_DIR, ModelMetadata, read_metadata, write_metadata
from training.round_common import short_model_name

log = logging.getLogger("sciner.soup")

WEIGHTS_FILE = "model.safetensors"
# config entries that say how a checkpoint was saved, not what the network is
_SAVE_ONLY_KEYS = ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures")


class SoupError(ValueError):
    """The models cannot be averaged (different labels, architecture or vocabulary), or fewer than two."""


@dataclass(frozen=True, slots=True)
class Member:
    """What a soup needs to know of one model: its folder (``sciner.json``, tokenizer), the folder of its
    PyTorch checkpoint (``hf/`` inside it, or one fetched from the registry) and the name lineage gives it."""

    folder: Path
    meta: ModelMetadata
    config: dict
    vocab: dict[str, int]
    checkpoint: Path
    name: str

    @property
    def weights(self) -> Path:
        return self.checkpoint / WEIGHTS_FILE


def architecture(config: Mapping) -> dict:
    """The network a Hugging Face config describes, without how it was saved."""
    return {k: v for k, v in config.items() if k not in _SAVE_ONLY_KEYS}


def check_members(members: Sequence[Member]) -> None:
    """Raise :class:`SoupError` naming the first member that differs from the lead where it must not."""
    if len(members) < 2:
        raise SoupError(f"a soup needs at least two models, got {len(members)}")
    lead = members[0]
    for m in members[1:]:
        if m.meta.labels != lead.meta.labels:
            raise SoupError(f"{m.name} has labels {m.meta.labels}, {lead.name} has {lead.meta.labels}")
        theirs, ours = architecture(m.config), architecture(lead.config)
        if theirs != ours:
            differ = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
            raise SoupError(f"{m.name} is another architecture than {lead.name} (config differs in {differ})")
        if m.vocab != lead.vocab:
            raise SoupError(f"{m.name} has another tokenizer vocabulary than {lead.name}")


def seed_conflict(members: Sequence[Member]) -> str | None:
    """Why averaging may hurt, or ``None``: two members fine-tuned from the same encoder with different seeds.

    Their classifier heads started from different random weights, so they need not lie in one basin: on
    the real data such soups scored below both members (docs/quality.md, ``soup-gold-1ep``,
    ``soup-selfdistill-gen3-seeds`` and, at the full-gold recipe, ``soup-fgm03-s42-s43``; a fifth member of
    another seed lowered the four-model soup, ``soup-5way-s42``), while soups of one seed gained
    (``soup-3ep``). Members without a recorded seed (soups, older models) are not compared; encoders compare
    by name, wherever their folder lay (as a round compares its model with the champion's). Pure."""
    first_seed: dict[str, tuple[str, object]] = {}
    for m in members:
        seed = m.meta.training.get("seed")
        if seed is None:
            continue
        other = first_seed.setdefault(short_model_name(m.meta.base_model), (m.name, seed))
        if other[1] != seed:
            return (
                f"{other[0]} (seed {other[1]}) and {m.name} (seed {seed}) were fine-tuned from one encoder with "
                "different seeds: their classifier heads started apart, and such soups scored below both members "
                "(docs/quality.md); train soup members with one SCINER_SEED"
            )
    return None


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform average of each weight (computed in float32, stored in the first model's dtypes)."""
    if not states:
        raise SoupError("nothing to average")
    lead = states[0]
    for k, state in enumerate(states[1:], start=2):
        if state.keys() != lead.keys():
            raise SoupError(f"model {k} has other weights: {sorted(state.keys() ^ lead.keys())[:5]}")
        for name, tensor in state.items():
            if tensor.shape != lead[name].shape:
                raise SoupError(f"model {k}: {name} is {tuple(tensor.shape)}, not {tuple(lead[name].shape)}")
    return {
        name: (sum(state[name].float() for state in states) / len(states)).to(tensor.dtype)
        for name, tensor in lead.items()
    }


def soup_metadata(members: Sequence[Member], weights_sha256: Sequence[str], created_at: str) -> ModelMetadata:
    """The lead's reading conventions (labels, special ids, markers, context); data and training say
    which models were averaged, with their weights' hashes and the dev scores they recorded."""
    lead = members[0].meta
    described = [
        {
            "folder": m.name,
            "weights_sha256": digest,
            "base_model": m.meta.base_model,
            "created_at": m.meta.created_at,
            "seed": m.meta.training.get("seed"),
            "case_markers": m.meta.case_markers,
            "context": m.meta.context,
            "train_sha256": m.meta.data.get("train", {}).get("sha256"),
            "dev_micro_f1": m.meta.metrics.get("dev", {}).get("micro_f1"),
        }
        for m, digest in zip(members, weights_sha256, strict=True)
    ]
    return ModelMetadata(
        labels=list(lead.labels),
        cls_id=lead.cls_id,
        sep_id=lead.sep_id,
        pad_id=lead.pad_id,
        max_positions=lead.max_positions,
        base_model=lead.base_model,
        created_at=created_at,
        unk_id=lead.unk_id,
        data={"soup_members": {m.name: m.meta.data for m in members}},
        training={"soup": {"method": "uniform weight average", "members": described}},
        context=lead.context,
        case_markers=lead.case_markers,
    )


def read_member(folder: Path, checkpoint: Path | None = None, name: str | None = None) -> Member:
    """A model folder as a soup member; ``checkpoint`` defaults to its ``hf/``, ``name`` to its path."""
    folder = Path(folder)
    meta = read_metadata(folder)
    checkpoint = Path(checkpoint) if checkpoint is not None else folder / HF_DIR
    if not (checkpoint / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {checkpoint.name}/{WEIGHTS_FILE} to average")
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    return Member(folder, meta, config, tokenizer.get("model", {}).get("vocab", {}), checkpoint, name or str(folder))


def read_weights(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """A safetensors file read once: its sha256 (what the soup's metadata names it by) and its tensors."""
    raw = path.read_bytes()
    return hashlib.sha256(raw).hexdigest(), load_safetensors(raw)


def make_soup(folders: Sequence[Path], out: Path) -> Path:
    """Average the models in ``folders`` (each with its ``hf/`` checkpoint) into the model folder ``out``."""
    return make_soup_of([read_member(f) for f in folders], out)


def make_soup_of(members: Sequence[Member], out: Path) -> Path:
    """Average ``members`` into the model folder ``out`` (PyTorch checkpoint, tokenizer, ``sciner.json``; no
    ONNX yet). Written beside ``out`` and renamed into place, so ``out`` is never a half-written soup (the
    old folder is removed just before the rename, as the trainer does)."""
    check_members(members)
    if warning := seed_conflict(members):
        log.warning("soup %s: %s", out, warning)
    out = Path(out)
    if any(out.resolve() in (m.folder.resolve(), m.checkpoint.resolve()) for m in members):
        raise SoupError(f"{out} is one of the models to average; write the soup elsewhere")
    staging = out.with_name(f".{out.name}.soup-staging")
    shutil.rmtree(staging, ignore_errors=True)
    lead = members[0]
    try:
        shutil.copytree(lead.folder, staging, ignore=shutil.ignore_patterns(ONNX_DIR, HF_DIR, METADATA_FILE))
        shutil.copytree(lead.checkpoint, staging / HF_DIR, ignore=shutil.ignore_patterns(WEIGHTS_FILE))
        digests, states = zip(*(read_weights(m.weights) for m in members), strict=True)
        save_file(average_state_dicts(states), staging / HF_DIR / WEIGHTS_FILE, metadata={"format": "pt"})
        del states
        created = datetime.now(UTC).isoformat(timespec="seconds")
        write_metadata(staging, soup_metadata(members, digests, created))
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
