"""What a version was trained and judged on, in one record: ``review/lineage.json`` plus one tag.

Content hashes of every data file (gold train/dev/eval/additions, the training set as used, the
auto-annotated snapshot) and the base encoder go into the artifact; the version carries only
``data_sha256``, a hash of those hashes: two versions with the same ``data_sha256`` were trained and
evaluated on the same data. Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

TAG = "data_sha256"


def lineage(
    *,
    gold_paths: Mapping[str, str],
    gold_hashes: Mapping[str, str],
    train_sha256: str,
    auto_sha256: str | None = None,
    base_model: str = "",
    annotator_version: str | None = None,
    soft_targets_sha256: str | None = None,
) -> dict:
    data = {f"gold_{k}": {"path": gold_paths.get(k), "sha256": v} for k, v in sorted(gold_hashes.items())}
    data["train_as_used"] = {"sha256": train_sha256}
    if auto_sha256 is not None:
        data["auto_annotated"] = {
            "path": "auto/auto_annotated.jsonl",
            "sha256": auto_sha256,
            "annotator_version": annotator_version,
        }
    if soft_targets_sha256 is not None:
        data["teacher_soft_targets"] = {"sha256": soft_targets_sha256, "teacher_version": annotator_version}
    return {"base_model": base_model, "data": data, TAG: data_sha256(data)}


def data_sha256(data: Mapping[str, Mapping]) -> str:
    """Hash of the data hashes (paths left out: the same data moved elsewhere is the same data)."""
    digests = {name: entry.get("sha256") for name, entry in data.items()}
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()
