"""The short verdict that opens a version's description (MLflow's version list cuts it after ~30 characters).

``Promoted: +0.9 F1 vs v12`` · ``Rejected: TaskName −4.2 F1 vs v12`` · ``Rejected: +0.1 F1 vs v12, below
+1.0``: the decision and the number that decided it first, the full reason after it. F1 in points
(x100), signed with a real minus sign. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

MINUS = "\u2212"


def points(value: float, digits: int = 1) -> str:
    """``0.009`` -> ``+0.9``; ``-0.0042`` -> ``−0.4`` (F1 points, always signed)."""
    text = f"{100 * value:+.{digits}f}"
    return text.replace("-", MINUS)


def headline(
    promote: bool,
    delta: float,
    *,
    champion: str | None,
    checks: Mapping[str, bool] | None = None,
    class_drops: Mapping[str, float] | None = None,
    min_f1_delta: float | None = None,
    ci_lower: float | None = None,
) -> str:
    """The verdict of a round: the decision, then the micro-F1 delta or the check that failed."""
    vs = f" vs v{champion}" if champion else ""
    gain = f"{points(delta)} F1{vs}"
    if promote:
        return f"Promoted: {gain}"
    failed = [name for name, ok in (checks or {}).items() if not ok]
    if "class_drop" in failed and class_drops:
        worst = max(class_drops, key=lambda k: class_drops[k])
        return f"Rejected: {worst} {points(-class_drops[worst])} F1{vs}"
    if "f1_delta" in failed:
        need = f", below {points(min_f1_delta)}" if min_f1_delta is not None else ""
        return f"Rejected: {gain}{need}"
    if "bootstrap_ci" in failed and ci_lower is not None:
        return f"Rejected: {gain}, 95% lower bound {points(ci_lower)}"
    if "seed_spread" in failed:
        return f"Rejected: {gain}, within the seed spread"
    if failed:
        return f"Rejected: {gain} ({', '.join(failed)})"
    return f"Rejected: {gain} (champion moved)"


def bootstrap_headline(promote: bool, micro_f1: float, champion: str | None) -> str:
    """``Promoted: bootstrap, 58.1 F1`` (the first champion) or ``Rejected: bootstrap, 58.1 F1, v3 serves``."""
    f1 = f"{100 * micro_f1:.1f} F1"
    return f"Promoted: bootstrap, {f1}" if promote else f"Rejected: bootstrap, {f1}, v{champion} serves"


def decision_headline(decision: Mapping, champion: str | None, min_f1_delta: float | None = None) -> str:
    """:func:`headline` of a ``Decision.to_dict()``-shaped mapping."""
    ci = decision.get("ci") or {}
    return headline(
        bool(decision.get("promote")),
        float(decision.get("delta") or 0.0),
        champion=champion,
        checks=decision.get("checks") or {},
        class_drops=decision.get("class_drops") or {},
        min_f1_delta=min_f1_delta,
        ci_lower=ci.get("lower") if isinstance(ci, Mapping) else None,
    )


def strip_verdict_word(reason: str) -> str:
    """``"Not promoted: micro-F1 ..."`` -> ``"micro-F1 ..."`` (the headline already says it)."""
    head, sep, rest = reason.partition(": ")
    return rest if sep and head in ("Promoted", "Not promoted", "Rejected") else reason


def description(verdict: str, reason: str, context: str) -> str:
    """``<verdict> — <reason> (<context>).`` on one line."""
    return f"{verdict} \u2014 {strip_verdict_word(reason).rstrip('.')} ({context})."


MANUAL_PREFIX = "Promoted by hand"
GATE_SAID = " | gate: "


def manual_description(who: str, why: str, when: str, previous: str) -> str:
    """A manual promotion's description: who, why and when first, the gate's own description kept after it
    (a second manual promotion replaces the first one's part)."""
    gate = previous.split(GATE_SAID, 1)[1] if previous.startswith(MANUAL_PREFIX) and GATE_SAID in previous else previous
    text = f"{MANUAL_PREFIX} by {who} ({when}): {why.rstrip('.')}."
    return text + (GATE_SAID + gate if gate else "")
