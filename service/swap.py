"""Loading the served model, and the load-warm-swap step itself.

``SCINER_MODEL_URI`` decides the source (:mod:`sciner.model_uri`):

* unset → ``models:/<registered_model_name>@<champion_alias>`` from the MLflow registry;
* ``models:/<name>@<alias>`` → that alias, polled every ``SCINER_POLL_SECONDS``;
* ``models:/<name>/<version>`` → that version, pinned (loaded once);
* anything else → a local model folder (the quickstart path; loaded once).

When an alias moves, the version it points at is served only if its record says it passed the gate
(``decision=promoted``) or a human promoted it with who and why (:mod:`sciner.gating`); otherwise the
service keeps what it serves, logs ``model_refused`` once, counts it (``sciner_model_refused_total``)
and ``GET /model`` names the refused version and why. ``SCINER_SERVE_ONLY_GATED=false`` turns it off.

:meth:`Swapper.check_once` is synchronous and blocking (registry calls, download, ONNX session,
warm-up); the service runs it in a worker thread so requests keep flowing on the old model. When
to load is decided in :mod:`service.swap_plan`, downloads are in :mod:`service.downloads`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sciner.gating import serve_verdict
from sciner.model_dir import METADATA_FILE, read_metadata
from sciner.model_uri import ModelSource
from sciner.settings import Settings
from service.downloads import fetch_version, serving_dir
from service.logs import log_event
from service.state import LoadedModel, ModelHolder, gpu_problem
from service.swap_plan import Failure, backoff_seconds, plan

if TYPE_CHECKING:
    from sciner.registry import RegisteredVersion

log = logging.getLogger("sciner.service")


def local_version(model_dir: Path) -> str:
    """A stable version string for a local folder: a short hash of its metadata file."""
    digest = hashlib.sha256((model_dir / METADATA_FILE).read_bytes()).hexdigest()
    return f"local-{digest[:10]}"


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def gold_f1_of(registered: RegisteredVersion | None, meta_metrics: dict) -> float | None:
    if registered is not None:
        # the loop logs eval_micro_f1 (gold evaluation split) on every registered version
        candidates = ("eval_micro_f1", "gold_micro_f1")
        for found in [registered.metrics.get(k) for k in candidates] + [registered.tags.get(k) for k in candidates]:
            if (value := _float(found)) is not None:
                return value
    gold = meta_metrics.get("gold")
    return _float(gold.get("micro_f1")) if isinstance(gold, dict) else None


def load_model(source: ModelSource, settings: Settings, registered: RegisteredVersion | None = None) -> LoadedModel:
    """Download (registry), build the predictor, warm it up and check the device. Raises on failure."""
    import onnxruntime as ort

    from sciner.predictor import Predictor

    if source.kind == "local":
        assert source.path is not None
        model_dir = source.path
        if not (model_dir / METADATA_FILE).is_file():
            raise FileNotFoundError(f"{model_dir} is not a sciner model folder ({METADATA_FILE} missing)")
        name, version = model_dir.name, local_version(model_dir)
    else:
        assert registered is not None
        model_dir = fetch_version(registry_settings(source, settings), registered.version, serving_dir(settings))
        name, version = registered.name, registered.version
    meta = read_metadata(model_dir)
    pred_settings = predictor_settings(settings)
    predictor = Predictor.from_model_dir(model_dir, pred_settings)
    predictor.warmup()
    backend = predictor.backend
    requested = list(getattr(backend, "requested_providers", []) or [])
    problem = gpu_problem(
        settings.device, settings.require_gpu, requested, backend.provider, list(ort.get_available_providers())
    )
    dev = meta.metrics.get("dev")
    return LoadedModel(
        predictor=predictor,
        name=name,
        version=version,
        alias=source.alias,
        source=source.kind,
        uri=source.uri,
        model_dir=model_dir,
        labels=list(predictor.labels),
        loaded_at=datetime.now(UTC),
        provider=backend.provider,
        requested_providers=requested,
        gold_f1=gold_f1_of(registered, meta.metrics),
        dev_f1=_float(dev.get("micro_f1")) if isinstance(dev, dict) else None,
        gpu_problem=problem,
    )


def predictor_settings(settings: Settings) -> Settings:
    """The service's predictor: its own token budget and thread count (it shares the cores with
    the HTTP event loop, unlike batch annotation)."""
    # Idle ONNX Runtime pool threads spin after each run; in a server that burns the CPU the HTTP
    # event loop needs between batches (measured: twice the CPU per request with 2 threads on 2 cores).
    update: dict[str, int | bool] = {
        "batch_token_budget": settings.service_token_budget,
        "ort_spinning": settings.service_ort_spinning,
    }
    if settings.service_intra_op_threads is not None:
        update["intra_op_threads"] = settings.service_intra_op_threads
    return settings.model_copy(update=update)


def registry_settings(source: ModelSource, settings: Settings) -> Settings:
    if source.name and source.name != settings.registered_model_name:
        return settings.model_copy(update={"registered_model_name": source.name})
    return settings


class SwapHooks(Protocol):
    def on_swap(self, old: LoadedModel | None, new: LoadedModel) -> None: ...

    def on_failed_load(self, stage: str) -> None: ...

    def on_refused(self) -> None: ...


Resolver = Callable[[ModelSource, Settings], "RegisteredVersion | None"]
Loader = Callable[[ModelSource, Settings, "RegisteredVersion | None"], LoadedModel]


def resolve_registered(source: ModelSource, settings: Settings) -> RegisteredVersion | None:
    from sciner import registry

    reg = registry_settings(source, settings)
    if source.version is not None:
        return registry.get_version(reg, source.version)
    return registry.alias_version(reg, source.alias)


class Swapper:
    """Polls the source and swaps in new versions; a failed load keeps the old model serving."""

    def __init__(
        self,
        source: ModelSource,
        settings: Settings,
        holder: ModelHolder,
        hooks: SwapHooks | None = None,
        *,
        resolver: Resolver = resolve_registered,
        loader: Loader = load_model,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.settings = settings
        self.holder = holder
        self.hooks = hooks
        self._resolve = resolver
        self._load = loader
        self._clock = clock
        self.failure: Failure | None = None
        self._last_problem: str | None = None  # repeated problems are logged once per interval
        self._last_problem_at = float("-inf")

    @property
    def done(self) -> bool:
        """A source that cannot move needs no more checks once its model serves."""
        return not self.source.polls and self.holder.current is not None

    def check_once(self) -> str:
        """One poll: returns what happened (``loaded``, ``kept``, ``waiting``, ``missing``, ``failed``,
        ``refused``)."""
        current = self.holder.current
        registered: RegisteredVersion | None = None
        try:
            if self.source.kind == "local":
                target: str | None = "local" if current is None else current.version
            else:
                registered = self._resolve(self.source, self.settings)
                target = registered.version if registered is not None else None
        except Exception as exc:  # registry unreachable: keep serving, say why
            self._fail("resolve", str(exc), version=None)
            return "failed"
        action = plan(current.version if current else None, target, self.failure, self._clock())
        if action == "missing":
            if current is None:
                self.holder.last_error = f"{self.source.uri} does not exist (yet)"
            if self._should_log("missing"):
                log_event(
                    log, "model_source_missing", logging.WARNING, uri=self.source.uri,
                    serving=current.version if current else None,
                )  # fmt: skip
            return "missing"
        if action == "wait":
            return "waiting"
        if action == "keep":
            self.holder.last_error = None  # the registry answers and the target serves
            self.holder.clear_refusal()
            self._last_problem = None
            return "kept"
        assert target is not None
        gate = None
        if self.gated and registered is not None:
            gate = serve_verdict(registered.version, registered.tags)
            if not gate.allowed:
                self._refuse(registered.version, gate.reason)
                return "refused"
        log_event(
            log,
            "model_load_started",
            uri=self.source.uri,
            version=target,
            serving=current.version if current else None,
        )
        started = self._clock()
        try:
            new = self._load(self.source, self.settings, registered)
        except Exception as exc:
            self._fail("load", f"{type(exc).__name__}: {exc}", version=target)
            return "failed"
        if gate is not None:
            new = dataclasses.replace(new, extra={**new.extra, "promotion": gate.reason})
        old = self.holder.swap(new)
        self.holder.clear_refusal()
        self.failure = None
        if self.hooks is not None:
            self.hooks.on_swap(old, new)
        log_event(
            log,
            "model_swapped" if old is not None else "model_loaded",
            name=new.name,
            version=new.version,
            previous=old.version if old else None,
            provider=new.provider,
            seconds=round(self._clock() - started, 3),
            gpu_problem=new.gpu_problem,
        )
        if new.gpu_problem:
            log_event(log, "model_not_ready", logging.ERROR, reason=new.gpu_problem)
        return "loaded"

    @property
    def gated(self) -> bool:
        """Only a moving alias is gated: a pinned version or a local folder is the operator's explicit choice."""
        return self.settings.serve_only_gated and self.source.polls

    def _refuse(self, version: str, reason: str) -> None:
        current = self.holder.current
        first = self.holder.refuse(version, reason, datetime.now(UTC))
        if current is None:
            self.holder.last_error = f"not served: {reason}"
        if not first:
            return
        if self.hooks is not None:
            self.hooks.on_refused()
        log_event(
            log, "model_refused", logging.WARNING, uri=self.source.uri, version=version, reason=reason,
            serving=current.version if current else None,
        )  # fmt: skip

    def _should_log(self, problem: str, every: float = 300.0) -> bool:
        now = self._clock()
        if problem != self._last_problem or now - self._last_problem_at >= every:
            self._last_problem, self._last_problem_at = problem, now
            return True
        return False

    def _fail(self, stage: str, reason: str, version: str | None) -> None:
        self.holder.record_failure(reason)
        if self.hooks is not None:
            self.hooks.on_failed_load(stage)
        if version is not None:
            attempts = self.failure.attempts + 1 if self.failure and self.failure.version == version else 1
            delay = backoff_seconds(attempts, self.settings.poll_seconds, self.settings.load_retry_max_seconds)
            self.failure = Failure(version, attempts, self._clock() + delay, reason)
        else:
            delay = self.settings.poll_seconds
        serving = self.holder.current
        if stage == "resolve" and not self._should_log(f"resolve: {reason}"):
            return
        log_event(
            log,
            "model_load_failed",
            logging.ERROR,
            stage=stage,
            uri=self.source.uri,
            version=version,
            reason=reason,
            serving=serving.version if serving else None,
            retry_in_s=round(delay, 1),
        )
