"""Which evaluation split a model folder kept out of its training, and whether the gate may judge it there.

The gate judges candidates on gold documents that nothing trained on (:mod:`training.eval_split`). A model
trained by a round or the bootstrap, by ``sciner train --exclude-eval-split`` or ``sciner distill
--exclude-eval-split`` records the split it left out in ``sciner.json`` (``data.eval_split_excluded``:
the split's tags), and a distilled model also records what its teachers left out (their distributions
carry what they learned). ``sciner challenge`` reads it back with :func:`held_out_problems` before a
model trained outside the loop is judged. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.eval_split import EvalSplit

HELD_OUT_KEY = "eval_split_excluded"  # in ModelMetadata.data: the EvalSplit.tags of the split left out
TEACHERS_KEY = "teachers_eval_split_excluded"  # in data["soft_targets"]: teacher folder -> its record or None


def held_out_record(split: EvalSplit) -> dict[str, str]:
    """What a model folder records about the evaluation split its training left out."""
    return dict(split.tags)


def held_out_problems(data: Mapping[str, Any], split_sha256: str, name: str = "the model") -> list[str]:
    """Why the gate could not judge a model with this ``data`` record fairly on the split ``split_sha256``;
    empty when it can: the model (every member of a soup, each teacher of a distilled model) records that
    it left out exactly that split."""
    members = data.get("soup_members")
    if isinstance(members, Mapping) and members:
        problems: list[str] = []
        for member, member_data in members.items():
            problems += held_out_problems(member_data or {}, split_sha256, f"soup member {member}")
        return problems
    problems = _own_problems(data.get(HELD_OUT_KEY), split_sha256, name)
    soft = data.get("soft_targets")
    if isinstance(soft, Mapping):
        teachers = soft.get(TEACHERS_KEY)
        if not isinstance(teachers, Mapping) or not teachers:
            problems.append(f"{name} learned from a teacher ({soft.get('teacher', '?')}) whose split is not recorded")
        else:
            for teacher, record in teachers.items():
                problems += _own_problems(record, split_sha256, f"teacher {teacher} of {name}")
    return problems


def _own_problems(record: object, split_sha256: str, name: str) -> list[str]:
    if not isinstance(record, Mapping):
        return [f"{name} does not record which evaluation split it left out (train with --exclude-eval-split)"]
    recorded = str(record.get("eval_split_sha256", ""))
    if recorded != split_sha256:
        return [
            f"{name} left out another evaluation split ({record.get('eval_split', '?')}, sha256 {recorded[:12]}) "
            f"than the gate's (sha256 {split_sha256[:12]})"
        ]
    return []
