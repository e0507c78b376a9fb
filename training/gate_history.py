"""What the per-class guard compares with: per-class F1 of every promoted version judged on the same split.

Reads the registry (versions tagged with the split's ``eval_split_sha256``, promoted by the gate, the
bootstrap or by hand, not rolled back) and returns ``{version: {class: f1}}`` from the
``eval_f1_<Class>`` metrics their runs logged; :func:`training.promotion.class_floors` takes the best.
"""

from __future__ import annotations

from sciner import registry
from sciner.gating import is_promoted
from sciner.settings import Settings

METRIC_PREFIX = "eval_f1_"


def per_class_scores(metrics: dict[str, float]) -> dict[str, float]:
    return {k[len(METRIC_PREFIX) :]: float(v) for k, v in metrics.items() if k.startswith(METRIC_PREFIX)}


def promoted_class_scores(settings: Settings, split_sha256: str) -> dict[str, dict[str, float]]:
    versions = registry.search_versions(settings, {"eval_split_sha256": split_sha256})
    return {v.version: per_class_scores(v.metrics) for v in versions if is_promoted(v.tags)}
