"""Which registered versions may serve: the record the gate or a human leaves on a version. Pure.

A version may serve when its tags say so:

* ``decision=promoted``: the promotion gate (or the bootstrap, when there was no champion) promoted it;
* ``decision_override=promoted_manually`` with ``promoted_by`` (who) and ``promotion_reason`` (why):
  ``sciner promote`` recorded a human decision. The gate's own ``decision`` stays on record.

Anything else (``decision=rejected``, no decision at all, a manual override without who or why) is
refused: the service keeps the model it serves (``SCINER_SERVE_ONLY_GATED=false`` turns this off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DECISION, PROMOTED = "decision", "promoted"
OVERRIDE, PROMOTED_MANUALLY = "decision_override", "promoted_manually"
PROMOTED_BY, PROMOTION_REASON, PROMOTED_AT = "promoted_by", "promotion_reason", "promoted_at"
CHAMPION_PREVIOUS = "champion_previous"
ROLLED_BACK_AT = "rolled_back_at"


@dataclass(frozen=True)
class ServeVerdict:
    allowed: bool
    reason: str  # why it may or may not serve, in one sentence


def serve_verdict(version: str, tags: Mapping[str, str]) -> ServeVerdict:
    decision = tags.get(DECISION, "")
    if decision == PROMOTED:
        return ServeVerdict(True, f"v{version}: promoted by the gate ({tags.get(PROMOTED_BY) or 'gate'})")
    if tags.get(OVERRIDE) == PROMOTED_MANUALLY:
        who, why = tags.get(PROMOTED_BY, "").strip(), tags.get(PROMOTION_REASON, "").strip()
        if who and why:
            return ServeVerdict(True, f"v{version}: promoted by hand by {who}: {why}")
        return ServeVerdict(
            False,
            f"v{version}: a manual promotion without who and why ({PROMOTED_BY}={who!r}, {PROMOTION_REASON}={why!r})",
        )
    said = f"the gate said {decision!r}" if decision else "it has no gate decision"
    return ServeVerdict(False, f"v{version} was not promoted ({said}) and no `sciner promote` recorded who and why")


def is_promoted(tags: Mapping[str, str]) -> bool:
    """Counts for the per-class best: promoted (by the gate or by hand) and not rolled back since."""
    if tags.get(ROLLED_BACK_AT):
        return False
    return tags.get(DECISION) == PROMOTED or tags.get(OVERRIDE) == PROMOTED_MANUALLY


def manual_promotion_tags(who: str, why: str, when: str, previous: str | None) -> dict[str, str]:
    tags = {OVERRIDE: PROMOTED_MANUALLY, PROMOTED_BY: who, PROMOTION_REASON: why, PROMOTED_AT: when}
    if previous is not None:
        tags[CHAMPION_PREVIOUS] = previous
    return tags
