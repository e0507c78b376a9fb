"""When to (re)load the served model: the decision after each poll, and the back-off after failures.

Pure functions of what serves, what the source names, and the last failure; :class:`service.swap.Swapper`
acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Plan = Literal["keep", "load", "wait", "missing"]


@dataclass(slots=True)
class Failure:
    """The latest failed load of one version, and when to try it again."""

    version: str
    attempts: int
    retry_at: float
    reason: str


def plan(current: str | None, target: str | None, failure: Failure | None, now: float) -> Plan:
    """What to do after reading the source: keep serving, load ``target``, or wait out a back-off.

    ``missing`` (alias or model not found) keeps whatever serves: an alias being moved or deleted
    must never take a working service down.
    """
    if target is None:
        return "missing"
    if target == current:
        return "keep"
    if failure is not None and failure.version == target and now < failure.retry_at:
        return "wait"
    return "load"


def backoff_seconds(attempts: int, poll_seconds: float, cap: float) -> float:
    """Retry delay after ``attempts`` consecutive failures of one version: poll, 2x, 4x ... up to cap."""
    return min(cap, poll_seconds * 2 ** max(0, attempts - 1))
