"""Promotion gate (pure): does the candidate replace the champion?

Promote only if all hold, on the same gold evaluation split scored by the same code:

1. candidate micro-F1 - champion micro-F1 > ``min_f1_delta``;
2. no class (with gold support) loses more than ``max_class_drop`` F1;
3. if ``require_ci``: the paired bootstrap 95% lower bound of the micro-F1 delta is > 0
   (sentences resampled with replacement, both models scored on the same resample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from sciner.decoding import tags_to_spans
from sciner.labels import OUTSIDE, repair_bio
from sciner.metrics import Evaluation

PROMOTED, REJECTED = "promoted", "rejected"
_EPS = 1e-9  # F1 values are ratios: differences below this are float noise, not gains


@dataclass(frozen=True)
class ModelScores:
    micro_f1: float
    per_class_f1: dict[str, float]
    support: dict[str, int]

    @classmethod
    def from_evaluation(cls, ev: Evaluation) -> ModelScores:
        return cls(
            ev.micro_f1,
            {k: v.f1 for k, v in ev.per_class.items()},
            {k: v.support for k, v in ev.per_class.items()},
        )


@dataclass(frozen=True)
class BootstrapCI:
    delta: float  # observed micro-F1 delta (candidate - champion)
    mean: float
    lower: float  # 2.5th percentile
    upper: float  # 97.5th percentile
    samples: int


@dataclass
class Decision:
    promote: bool
    reason: str  # one sentence
    delta: float
    checks: dict[str, bool] = field(default_factory=dict)
    class_drops: dict[str, float] = field(default_factory=dict)  # champion F1 - candidate F1
    ci: BootstrapCI | None = None

    @property
    def label(self) -> str:
        return PROMOTED if self.promote else REJECTED

    def to_dict(self) -> dict:
        out = asdict(self)
        out["decision"] = self.label
        return out


def sentence_counts(gold: Sequence[Sequence[str | None]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """``[n_sentences, 3]``: (exact-match entities, predicted entities, gold entities), strict IOB2."""
    out = np.zeros((len(gold), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        gs = {(s.start, s.end, s.label) for s in tags_to_spans(repair_bio([t or OUTSIDE for t in g]))}
        ps = {(s.start, s.end, s.label) for s in tags_to_spans(repair_bio(list(p)))}
        out[i] = (len(gs & ps), len(ps), len(gs))
    return out


def _f1(tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> np.ndarray:
    denom = n_pred + n_gold
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def micro_f1(counts: np.ndarray) -> float:
    tp, n_pred, n_gold = counts.sum(axis=0)
    return float(_f1(np.array(tp), np.array(n_pred), np.array(n_gold)))


def paired_bootstrap(
    candidate: np.ndarray, champion: np.ndarray, samples: int = 1000, seed: int = 0, chunk: int = 200
) -> BootstrapCI:
    """Percentile CI of the micro-F1 delta over sentence resamples (same resample for both)."""
    if candidate.shape != champion.shape:
        raise ValueError("both models must be scored on the same sentences")
    n = len(candidate)
    delta = micro_f1(candidate) - micro_f1(champion)
    if n == 0:
        return BootstrapCI(delta, delta, delta, delta, 0)
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, samples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, samples - start), n))
        c = candidate[idx].sum(axis=1)
        h = champion[idx].sum(axis=1)
        deltas.append(_f1(c[:, 0], c[:, 1], c[:, 2]) - _f1(h[:, 0], h[:, 1], h[:, 2]))
    d = np.concatenate(deltas)
    lower, upper = np.percentile(d, [2.5, 97.5])
    return BootstrapCI(delta, float(d.mean()), float(lower), float(upper), samples)


def decide(
    candidate: ModelScores,
    champion: ModelScores,
    *,
    min_f1_delta: float = 0.0,
    max_class_drop: float = 0.05,
    require_ci: bool = False,
    ci: BootstrapCI | None = None,
    champion_name: str = "the champion",
) -> Decision:
    delta = candidate.micro_f1 - champion.micro_f1
    classes = [c for c, s in champion.support.items() if s > 0] or list(champion.per_class_f1)
    drops = {c: champion.per_class_f1.get(c, 0.0) - candidate.per_class_f1.get(c, 0.0) for c in classes}
    worst = max(drops, key=drops.__getitem__) if drops else None
    checks = {
        "f1_delta": delta > min_f1_delta + _EPS,
        "class_drop": worst is None or drops[worst] <= max_class_drop + _EPS,
    }
    if require_ci:
        checks["bootstrap_ci"] = ci is not None and ci.lower > 0
    score = f"micro-F1 {candidate.micro_f1:.4f} vs {champion_name} {champion.micro_f1:.4f} ({delta:+.4f})"
    failures = []
    if not checks["f1_delta"]:
        failures.append(f"the gain is not above the required {min_f1_delta:+.4f}")
    if not checks["class_drop"]:
        assert worst is not None
        failures.append(f"{worst} F1 dropped by {drops[worst]:.4f} (more than {max_class_drop:.4f})")
    if require_ci and not checks["bootstrap_ci"]:
        lower = "not computed" if ci is None else f"{ci.lower:+.4f}"
        failures.append(f"the bootstrap 95% lower bound of the gain is {lower}, not above 0")
    promote = not failures
    if promote:
        extra = f", bootstrap 95% lower bound {ci.lower:+.4f}" if require_ci and ci is not None else ""
        drop_txt = f"largest class drop {drops[worst]:.4f}" if worst is not None else "no classes"
        reason = f"Promoted: {score} beats the required {min_f1_delta:+.4f}, {drop_txt}{extra}."
    else:
        reason = f"Not promoted: {score}; " + "; ".join(failures) + "."
    return Decision(promote, reason, delta, checks, drops, ci)
