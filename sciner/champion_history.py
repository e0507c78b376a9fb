"""Which versions served as champion, in order: what ``sciner rollback`` returns to.

MLflow keeps no history of an alias. sciner keeps one in the registered model's tag ``champion_history``
(compact JSON, newest last, the latest :data:`KEEP` moves), written on every champion move sciner makes
(:func:`sciner.registry.set_alias`). A move made elsewhere (the MLflow UI, the REST API) writes nothing,
but it is seen at the next move or rollback: the alias then points at a version that is not the last
recorded one, so that version is recorded as ``observed`` first, and the version that served before it is
the last recorded one.

The history reads as a stack: a move pushes the new champion, a rollback pops the version rolled back
from. ``rollback_target`` is the version under the current champion. Pure functions, plus :func:`read`
and :func:`append` at the registry edge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sciner.settings import Settings

log = logging.getLogger(__name__)

TAG = "champion_history"
KEEP = 50
ROLLBACK, OBSERVED = "rollback", "observed"


@dataclass(frozen=True)
class Move:
    version: str
    kind: str  # "gate", "bootstrap", "manual", "rollback", "observed" (moved outside sciner)
    at: str = ""


def parse(text: str | None) -> list[Move]:
    """The tag's value as moves; an unreadable value is an empty history (never an error)."""
    try:
        rows = json.loads(text or "[]")
        return [Move(str(r["version"]), str(r.get("kind", "")), str(r.get("at", ""))) for r in rows]
    except (ValueError, TypeError, KeyError):
        return []


def dump(moves: Sequence[Move]) -> str:
    return json.dumps([asdict(m) for m in list(moves)[-KEEP:]], separators=(",", ":"))


def stack(moves: Sequence[Move]) -> list[str]:
    """Champions in the order they served, rollbacks undone: a rollback pops the version it left."""
    out: list[str] = []
    for move in moves:
        if move.kind == ROLLBACK:
            if out:
                out.pop()
            if not out or out[-1] != move.version:
                out.append(move.version)
        elif not out or out[-1] != move.version:
            out.append(move.version)
    return out


def with_observed(moves: Sequence[Move], current: str | None, at: str = "") -> list[Move]:
    """``moves`` plus an ``observed`` move when the alias points at a version the history does not end with."""
    served = stack(moves)
    if current is not None and (not served or served[-1] != current):
        return [*moves, Move(current, OBSERVED, at)]
    return list(moves)


def rollback_target(moves: Sequence[Move], current: str) -> str | None:
    """The version that served before ``current`` (``None`` when the history does not know one)."""
    served = stack(with_observed(moves, current))
    return served[-2] if len(served) >= 2 else None


# --- registry edge ---------------------------------------------------------------------------
def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read(settings: Settings) -> list[Move]:
    from sciner import registry

    try:
        model = registry.client(settings).get_registered_model(settings.registered_model_name)
    except Exception as exc:  # a model without versions yet, or an unreachable registry: no history
        log.debug("no champion history: %s", exc)
        return []
    return parse((model.tags or {}).get(TAG))


def append(settings: Settings, before: str | None, after: str, kind: str) -> None:
    """Record the move ``before`` -> ``after`` (``before`` as observed if the history did not end with it).
    Best effort: a history that cannot be written must not undo a move that happened."""
    from sciner import registry

    at = now()
    moves = with_observed(read(settings), before, at)
    if kind != ROLLBACK and stack(moves)[-1:] == [after]:
        return
    moves.append(Move(after, kind, at))
    try:
        registry.client(settings).set_registered_model_tag(settings.registered_model_name, TAG, dump(moves))
    except Exception as exc:
        log.warning("could not record the champion move v%s -> v%s: %s", before, after, exc)
