"""The service's own Prometheus metrics, served next to BentoML's on ``/metrics``.

Created lazily inside the worker process: BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` in the
worker before the service class is instantiated, and a ``prometheus_client`` metric created
earlier would never reach the multiprocess collector. No ``Info`` metric (unsupported in
multiprocess mode): the model version is a gauge set to 1 for the serving version, 0 for old ones.
"""

from __future__ import annotations

from collections import Counter as Tally
from functools import lru_cache
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from service.state import LoadedModel

WINDOW_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        kw = {"registry": registry} if registry is not None else {}
        self.model_info = Gauge(
            "sciner_model_info",
            "Serving model version (1 = serving, 0 = replaced).",
            ["name", "version", "alias", "provider"],
            multiprocess_mode="livemax",
            **kw,
        )
        self.model_ready = Gauge(
            "sciner_model_ready",
            "1 when a warm model serves on the demanded device.",
            multiprocess_mode="livemin",
            **kw,
        )
        self.entities = Counter("sciner_entities", "Entities returned, by label.", ["label"], **kw)
        self.windows = Histogram(
            "sciner_windows_per_request",
            "Model windows per API request.",
            ["endpoint"],
            buckets=WINDOW_BUCKETS,
            **kw,
        )
        self.texts = Counter("sciner_texts", "Texts annotated, by endpoint.", ["endpoint"], **kw)
        self.swaps = Counter("sciner_model_swaps", "Model versions swapped in after the first load.", **kw)
        self.loads = Counter("sciner_model_loads", "Model versions loaded (first load and swaps).", **kw)
        self.failed_loads = Counter(
            "sciner_model_failed_loads", "Failed model checks/loads (the old model kept serving).", ["stage"], **kw
        )
        self.refused = Counter(
            "sciner_model_refused",
            "Aliased versions not served: the gate did not promote them and no manual promotion is recorded.",
            **kw,
        )
        self.text_errors = Counter(
            "sciner_text_errors", "Texts whose prediction raised (answered 500, batch neighbours unaffected).", **kw
        )

    # --- SwapHooks ---------------------------------------------------------------------------
    def on_swap(self, old: LoadedModel | None, new: LoadedModel) -> None:
        if old is not None:
            self.model_info.labels(old.name, old.version, old.alias or "", old.provider).set(0)
            self.swaps.inc()
        self.model_info.labels(new.name, new.version, new.alias or "", new.provider).set(1)
        self.loads.inc()
        self.model_ready.set(0 if new.gpu_problem else 1)

    def on_failed_load(self, stage: str) -> None:
        self.failed_loads.labels(stage).inc()

    def on_refused(self) -> None:
        self.refused.inc()

    # --- per request -------------------------------------------------------------------------
    def observe_entities(self, labels: Tally[str]) -> None:
        for label, n in labels.items():
            self.entities.labels(label).inc(n)

    def observe_request(self, endpoint: str, windows: int, texts: int) -> None:
        self.windows.labels(endpoint).observe(windows)
        self.texts.labels(endpoint).inc(texts)


@lru_cache(maxsize=1)
def get_metrics() -> ServiceMetrics:
    """The process-wide metrics (registered once in the default registry)."""
    return ServiceMetrics()
