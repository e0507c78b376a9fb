"""Promotion gate (pure): does the candidate replace the champion?

Both models are scored by the same code on the gate's evaluation split (never seen by training,
early stopping or calibration). The candidate is promoted only if all of these hold:

1. ``f1_delta``: candidate micro-F1 - champion micro-F1 > ``min_f1_delta`` (always checked);
2. the noise rule (``rule``), which says what the gain must beat:

   * ``bootstrap``: the paired bootstrap over **documents** (sentences of one document are not
     independent) puts the lower bound of the delta's interval above 0 (``bootstrap_ci``);
   * ``spread``: the delta beats ``spread_z * sqrt(2) * seed_sd``, the run-to-run spread of two
     trainings of the same recipe (``seed_spread``);
   * ``bootstrap_and_spread`` (the default): the bootstrap interval excludes 0 **and** the delta beats
     ``z * sqrt(se^2 + 2 * seed_sd^2)`` (``seed_spread``), ``se`` the bootstrap standard error and ``z``
     the normal quantile of the interval's level: under a null round (same recipe, another seed) the
     delta is the seed difference (variance ``2 seed_sd^2``) plus the evaluation sample's noise
     (``se^2``), so the interval is widened by both before it must exclude 0;
   * ``delta``: only rule 1 (development);

3. ``class_drop``: no class (with gold support) falls more than ``max_class_drop`` below its floor:
   the best F1 it ever had on the same split among promoted versions and the champion, so small
   losses cannot accumulate round after round.

The decision records which rule fired, the interval, its level and the resample count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Literal

import numpy as np

from sciner.decoding import strict_entities

if TYPE_CHECKING:
    from sciner.metrics import Evaluation

PROMOTED, REJECTED = "promoted", "rejected"
Rule = Literal["bootstrap_and_spread", "bootstrap", "spread", "delta"]
RULE_CHECKS: dict[str, tuple[str, ...]] = {
    "bootstrap_and_spread": ("bootstrap_ci", "seed_spread"),
    "bootstrap": ("bootstrap_ci",),
    "spread": ("seed_spread",),
    "delta": (),
}
_EPS = 1e-9  # F1 values are ratios: differences below this are float noise, not gains


@dataclass(frozen=True)
class ModelScores:
    micro_f1: float
    per_class_f1: dict[str, float]
    support: dict[str, int]

    @classmethod
    def from_evaluation(cls, ev: Evaluation) -> ModelScores:
        return cls(
            ev.micro_f1, {k: v.f1 for k, v in ev.per_class.items()}, {k: v.support for k, v in ev.per_class.items()}
        )


@dataclass(frozen=True)
class BootstrapCI:
    delta: float  # observed micro-F1 delta (candidate - champion)
    mean: float
    lower: float  # (1 - confidence) / 2 percentile
    upper: float  # (1 + confidence) / 2 percentile
    samples: int  # resamples drawn
    confidence: float = 0.95
    units: int = 0  # documents resampled
    unit: str = "document"
    sd: float = 0.0  # standard deviation of the resampled deltas (the bootstrap standard error)


@dataclass(frozen=True)
class ClassFloor:
    """The best F1 a class had on this split, and which version had it."""

    f1: float
    version: str


@dataclass
class Decision:
    promote: bool
    reason: str  # one sentence
    delta: float
    checks: dict[str, bool] = field(default_factory=dict)
    class_drops: dict[str, float] = field(default_factory=dict)  # floor F1 - candidate F1
    ci: BootstrapCI | None = None
    rule: str = "bootstrap_and_spread"  # the configured noise rule
    fired: str = ""  # the check that decided: the first that failed, or the rule that passed
    spread_threshold: float | None = None
    class_floors: dict[str, ClassFloor] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return PROMOTED if self.promote else REJECTED

    def to_dict(self) -> dict:
        out = asdict(self)
        out["decision"] = self.label
        return out


# --- counts and the bootstrap ---------------------------------------------------------------
def sentence_counts(gold: Sequence[Sequence[str | None]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """``[n_sentences, 3]``: (exact-match entities, predicted entities, gold entities), strict IOB2."""
    out = np.zeros((len(gold), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        gs, ps = strict_entities(g), strict_entities(p)
        out[i] = (len(gs & ps), len(ps), len(gs))
    return out


def document_counts(counts: np.ndarray, documents: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Sentence counts summed per document: ``([n_documents, 3], document ids in first-seen order)``."""
    if len(counts) != len(documents):
        raise ValueError(f"{len(counts)} sentence counts but {len(documents)} document ids")
    order: dict[str, int] = {}
    for d in documents:
        order.setdefault(d, len(order))
    out = np.zeros((len(order), 3), dtype=np.int64)
    np.add.at(out, np.array([order[d] for d in documents], dtype=np.int64), counts)
    return out, list(order)


def _f1(tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> np.ndarray:
    denom = n_pred + n_gold
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def micro_f1(counts: np.ndarray) -> float:
    tp, n_pred, n_gold = counts.sum(axis=0)
    return float(_f1(np.array(tp), np.array(n_pred), np.array(n_gold)))


def paired_bootstrap(
    candidate: np.ndarray,
    champion: np.ndarray,
    samples: int = 1000,
    seed: int = 0,
    chunk: int = 200,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile interval of the micro-F1 delta over resamples of the rows (documents, with
    :func:`document_counts`); both models are scored on the same resample."""
    if candidate.shape != champion.shape:
        raise ValueError("both models must be scored on the same documents")
    n = len(candidate)
    delta = micro_f1(candidate) - micro_f1(champion)
    if n == 0:
        return BootstrapCI(delta, delta, delta, delta, 0, confidence, 0)
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, samples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, samples - start), n))
        c = candidate[idx].sum(axis=1)
        h = champion[idx].sum(axis=1)
        deltas.append(_f1(c[:, 0], c[:, 1], c[:, 2]) - _f1(h[:, 0], h[:, 1], h[:, 2]))
    d = np.concatenate(deltas)
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.percentile(d, [tail, 100 - tail])
    return BootstrapCI(
        delta,
        float(d.mean()),
        float(lower),
        float(upper),
        samples,
        confidence,
        n,
        "document",
        float(d.std(ddof=1)) if len(d) > 1 else 0.0,
    )


def spread_threshold(seed_sd: float, z: float) -> float:
    """The gain two trainings of one recipe exceed by chance in a fraction ``1 - Phi(z)`` of pairs:
    the difference of two independent seeds has standard deviation ``sqrt(2) * seed_sd``."""
    return z * math.sqrt(2) * seed_sd


def null_threshold(ci: BootstrapCI, seed_sd: float) -> float:
    """The gain a null round (same recipe and data, another seed) stays below at the interval's level:
    seed difference and evaluation-sample noise are independent, so their variances add."""
    z = NormalDist().inv_cdf((1 + ci.confidence) / 2)
    return z * math.sqrt(ci.sd**2 + 2 * seed_sd**2)


# --- the per-class floor --------------------------------------------------------------------
def class_floors(
    champion: ModelScores,
    champion_version: str,
    history: Mapping[str, Mapping[str, float]],
) -> dict[str, ClassFloor]:
    """Per class with gold support: the best F1 among ``history`` (``{version: {class: f1}}``, promoted
    versions scored on this split) and the champion as scored now."""
    classes = [c for c, s in champion.support.items() if s > 0] or list(champion.per_class_f1)
    floors = {}
    for c in classes:
        best = ClassFloor(champion.per_class_f1.get(c, 0.0), champion_version)
        for version, scores in history.items():
            if c in scores and scores[c] > best.f1 + _EPS:
                best = ClassFloor(float(scores[c]), version)
        floors[c] = best
    return floors


# --- the decision ---------------------------------------------------------------------------
def decide(
    candidate: ModelScores,
    champion: ModelScores,
    *,
    rule: Rule = "bootstrap_and_spread",
    min_f1_delta: float = 0.0,
    max_class_drop: float = 0.05,
    ci: BootstrapCI | None = None,
    seed_sd: float = 0.0,
    spread_z: float = 1.645,
    floors: Mapping[str, ClassFloor] | None = None,
    champion_name: str = "the champion",
) -> Decision:
    if rule not in RULE_CHECKS:
        raise ValueError(f"unknown promotion rule {rule!r}; one of {', '.join(RULE_CHECKS)}")
    delta = candidate.micro_f1 - champion.micro_f1
    if floors is None:
        floors = class_floors(champion, champion_name, {})
    drops = {c: f.f1 - candidate.per_class_f1.get(c, 0.0) for c, f in floors.items()}
    worst = max(drops, key=drops.__getitem__) if drops else None
    threshold: float | None = None
    if rule == "spread":
        threshold = spread_threshold(seed_sd, spread_z)
    elif rule == "bootstrap_and_spread" and ci is not None:
        threshold = null_threshold(ci, seed_sd)
    checks = {"f1_delta": delta > min_f1_delta + _EPS}
    failures: dict[str, str] = {}
    if not checks["f1_delta"]:
        failures["f1_delta"] = f"the gain is not above the required {min_f1_delta:+.4f}"
    if "bootstrap_ci" in RULE_CHECKS[rule]:
        checks["bootstrap_ci"] = ci is not None and ci.lower > _EPS
        if not checks["bootstrap_ci"]:
            failures["bootstrap_ci"] = (
                "no bootstrap interval was computed"
                if ci is None
                else f"the {ci.confidence:.0%} bootstrap interval of the gain over {ci.units} documents "
                f"[{ci.lower:+.4f}, {ci.upper:+.4f}] ({ci.samples} resamples) does not exclude 0"
            )
    if "seed_spread" in RULE_CHECKS[rule]:
        checks["seed_spread"] = threshold is not None and delta > threshold + _EPS
        if not checks["seed_spread"] and threshold is None:
            failures["seed_spread"] = "no bootstrap interval to combine with the seed spread"
        elif not checks["seed_spread"]:
            how = (
                f"{spread_z:g} x sqrt(2) x seed sd {seed_sd:.4f}"
                if rule == "spread"
                else f"z x sqrt(bootstrap se^2 + 2 x seed sd^2), seed sd {seed_sd:.4f}"
            )
            failures["seed_spread"] = f"the gain is within the seed spread (needs more than {threshold:+.4f} = {how})"
    checks["class_drop"] = worst is None or drops[worst] <= max_class_drop + _EPS
    if not checks["class_drop"]:
        assert worst is not None
        f = floors[worst]
        failures["class_drop"] = (
            f"{worst} F1 dropped by {drops[worst]:.4f} below its best on this split "
            f"({f.f1:.4f}, {_name(f.version)}; more than {max_class_drop:.4f})"
        )
    score = f"micro-F1 {candidate.micro_f1:.4f} vs {champion_name} {champion.micro_f1:.4f} ({delta:+.4f})"
    promote = not failures
    if promote:
        fired = rule
        parts = [f"beats the required {min_f1_delta:+.4f}"]
        if ci is not None and "bootstrap_ci" in RULE_CHECKS[rule]:
            parts.append(
                f"{ci.confidence:.0%} bootstrap interval over {ci.units} documents "
                f"[{ci.lower:+.4f}, {ci.upper:+.4f}] ({ci.samples} resamples)"
            )
        if threshold is not None:
            parts.append(f"above the seed spread {threshold:+.4f}")
        if worst is not None:
            parts.append(f"largest class drop below its best {drops[worst]:.4f}")
        reason = f"Promoted: {score} " + ", ".join(parts) + f" (rule {rule})."
    else:
        fired = next(iter(failures))
        reason = f"Not promoted: {score}; " + "; ".join(failures.values()) + f" (rule {rule})."
    return Decision(promote, reason, delta, checks, drops, ci, rule, fired, threshold, dict(floors))


def _name(version: str) -> str:
    return f"v{version}" if version.isdigit() else version
