"""The BentoML service: ``bentoml serve service.app:SciNER``.

Routes
  ``POST /extract``        ``{"text"}`` → entities (character offsets), model version, windows
  ``POST /extract_batch``  ``{"texts": [...]}`` → a list of the above, in order
  ``POST /ingest``         papers into the paper store (write scope)
  ``GET  /model``          what serves: name, version, alias, labels, gold F1, load time, device
  ``/livez`` ``/readyz`` ``/metrics`` ``/docs.json``  BentoML's own
  (``/internal/infer``, the adaptive-batched ``infer`` method, is called in-process only: the
  request guard answers 404 to it over HTTP, and :mod:`service.openapi_doc` leaves it out of ``/docs.json``)

Every request passes :class:`service.middleware.RequestGuard` first: bearer tokens and scopes,
JSON only, cross-site write checks, body size, and the request model (400/422 with the field).

Requests are validated in the public handlers (so one bad text can never fail an adaptive batch),
then their texts go through BentoML's adaptive batcher into the ``infer`` method. Each batch is
dealt, sorted by length, into one part per CPU core (``SCINER_SERVICE_PARALLEL_BATCHES``) that run
at once in threads, each a single-threaded ONNX run (see :mod:`service.batching`); the predictor
sorts each call's windows by length and runs them in token-budgeted ONNX batches.
``SCINER_ADAPTIVE_BATCHING=false`` sends each request to the predictor on its own instead (as many
at once as there are parts), for comparison. Requests over ``SCINER_LONG_TEXT_CHARS`` characters
run on the long lane instead (:mod:`service.long_lane`), in pieces, so they never hold short ones.

The model comes from ``SCINER_MODEL_URI`` (see :mod:`service.swap`); a background task loads it
and, for a registry alias, keeps polling and swaps new versions in after they are warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import anyio
import bentoml
from bentoml.exceptions import ServiceUnavailable
from fastapi import FastAPI
from starlette.responses import HTMLResponse, JSONResponse

from sciner.backends import CUDA
from sciner.cpus import available_cpus
from sciner.model_uri import parse_model_uri
from sciner.settings import Settings, get_settings
from service.batching import split_parts
from service.dispatcher import batch_factory, batched_call, cap_batch_wait
from service.docs_page import DOCS_HTML
from service.ingest import IngestRequest, IngestResponse, StoreHolder, ingest
from service.logs import enable_sciner_logs, log_event
from service.long_lane import LongLane
from service.metrics import get_metrics
from service.middleware import GuardConfig, RequestGuard
from service.openapi_doc import PublicOpenAPI
from service.schemas import (
    ExtractBatchRequest,
    ExtractRequest,
    ExtractResponse,
    InferRequest,
    ModelInfo,
    RequestError,
    TextResult,
    check_text,
    check_texts,
)
from service.state import LoadedModel, ModelHolder
from service.swap import Swapper, predictor_settings

log = logging.getLogger("sciner.service")

GPU_PROVIDERS = (CUDA, "torch:cuda")
SETTINGS = get_settings()  # decorator arguments are fixed at import; handlers read self.settings
INFER = "infer"
# Request models the guard checks bodies against (the same ones BentoML parses with).
BODY_MODELS = {"/extract": ExtractRequest, "/extract_batch": ExtractBatchRequest, "/ingest": IngestRequest}
# The largest acceptable body: every character JSON-escaped as a surrogate pair, plus slack.
MAX_BODY_BYTES = 12 * SETTINGS.max_chars + (1 << 20)

model_api = FastAPI(title="sciner-model", docs_url=None, redoc_url=None, openapi_url=None)

Batched = Callable[[list[str]], Awaitable[list[TextResult]]]


@model_api.get("/docs", include_in_schema=False)
async def docs_page() -> HTMLResponse:
    """Swagger UI of ``/docs.json`` (BentoML serves the same at ``/``)."""
    return HTMLResponse(DOCS_HTML)


def parallel_parts(settings: Settings) -> int:
    """Parts an adaptive batch is split into (threads running single-threaded ONNX at once)."""
    if settings.service_parallel_batches:
        return settings.service_parallel_batches
    return available_cpus()  # the container's CPU limit (cgroup quota), else the affinity mask


def _error(status: HTTPStatus, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=int(status))


def _client_error(exc: RequestError, route: str) -> JSONResponse:
    """A request check failed: one INFO line (status and route, never the request content)."""
    log_event(log, "request_rejected", status=int(exc.status), method="POST", path=route, reason="request check")
    return _error(exc.status, exc.message)


@bentoml.service(
    name="sciner",
    description="Scientific entity recognition (ONNX Runtime) with adaptive batching and hot model swap.",
    workers=SETTINGS.service_workers,
    traffic={"timeout": SETTINGS.request_timeout_seconds},
    logging={"access": {"enabled": SETTINGS.access_log}},
)
@bentoml.asgi_app(model_api, path="/")
class SciNER:
    def __init__(self) -> None:
        self.settings = get_settings()
        enable_sciner_logs(self.settings.log_level)
        self.holder = ModelHolder()
        self.metrics = get_metrics()
        self.metrics.model_ready.set(0)
        self.source = parse_model_uri(self.settings.model_uri, self.settings)
        self.swapper = Swapper(self.source, self.settings, self.holder, self.metrics)
        self.papers = StoreHolder(self.settings)
        self._parts = parallel_parts(self.settings)
        # batching off: each request is its own inference, as many at once as batches have parts
        self._limiter = anyio.CapacityLimiter(self._parts)
        self._pool = ThreadPoolExecutor(max(1, self._parts - 1), thread_name_prefix="sciner-infer")
        self._long = LongLane(
            self.settings.long_lane_threads,
            self.settings.long_lane_nice,
            self.settings.long_lane_max_requests,
            self.settings.piece_chars,
        )
        self._batched: Batched | None = None
        self._poller: asyncio.Task[None] | None = None
        log_event(
            log,
            "service_init",
            uri=self.source.uri,
            source=self.source.kind,
            adaptive_batching=self.settings.adaptive_batching,
            max_batch_size=self.settings.max_batch_size,
            max_latency_ms=self.settings.max_latency_ms,
            poll_seconds=self.settings.poll_seconds,
            workers=self.settings.service_workers,
            intra_op_threads=predictor_settings(self.settings).intra_op_threads,
            token_budget=self.settings.service_token_budget,
            parallel_parts=self._parts,
        )

    # --- lifecycle ---------------------------------------------------------------------------
    @bentoml.on_startup
    async def start_model_poller(self) -> None:
        self._poller = asyncio.create_task(self._poll_forever(), name="sciner-model-poller")

    @bentoml.on_shutdown
    async def stop_model_poller(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._long.shutdown()
        self.papers.close()

    async def _poll_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.swapper.check_once)
            except Exception:  # never let the poller die
                log.exception("model poll crashed")
            if self.swapper.done:
                return
            await asyncio.sleep(self.settings.poll_seconds)

    async def __is_ready__(self) -> bool:
        return self.holder.readiness()[0]

    # --- public API --------------------------------------------------------------------------
    @bentoml.api(route="/extract", input_spec=ExtractRequest, output_spec=ExtractResponse)
    async def extract(self, text: str) -> ExtractResponse | JSONResponse:
        """Entities of one text, in character offsets of that text."""
        try:
            check_text(text, self.settings)
        except RequestError as exc:
            return _client_error(exc, "/extract")
        results = await self._infer([text])
        if isinstance(results, JSONResponse):
            return results
        result = results[0]
        if result.error is not None:
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "prediction failed; see the server log")
        self.metrics.observe_request("extract", result.windows, 1)
        return ExtractResponse(entities=result.entities, model_version=result.model_version, windows=result.windows)

    @bentoml.api(route="/extract_batch", input_spec=ExtractBatchRequest)
    async def extract_batch(self, texts: list[str]) -> list[ExtractResponse]:
        """Entities of each text, in order (bounded count and total size)."""
        try:
            check_texts(texts, self.settings)
        except RequestError as exc:
            return _client_error(exc, "/extract_batch")  # type: ignore[return-value]  # BentoML passes Responses on
        results = await self._infer(texts)
        if isinstance(results, JSONResponse):
            return results  # type: ignore[return-value]
        if any(r.error is not None for r in results):
            return _error(  # type: ignore[return-value]
                HTTPStatus.INTERNAL_SERVER_ERROR, "prediction failed; see the server log"
            )
        self.metrics.observe_request("extract_batch", sum(r.windows for r in results), len(results))
        return [ExtractResponse(entities=r.entities, model_version=r.model_version, windows=r.windows) for r in results]

    @bentoml.api(route="/ingest", input_spec=IngestRequest, output_spec=IngestResponse)
    async def ingest(self, papers: list[dict]) -> IngestResponse | JSONResponse:
        """Store newly published papers for the next retraining round (deduplicated by id and content).

        Valid papers are kept even when others in the request are invalid; those come back in
        ``errors`` with their index and reason. 422 if no paper in the request is valid."""
        try:
            report = await asyncio.to_thread(ingest, self.papers, papers)
        except Exception:
            log.exception("paper store failed")
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, "the paper store is unavailable; retry later")
        log_event(
            log, "papers_ingested", added=report.added, duplicates=len(report.duplicates), errors=len(report.errors)
        )
        if report.errors and not report.added and not report.duplicates:
            return JSONResponse(
                {"error": "no valid paper in the request", **report.model_dump()},
                status_code=int(HTTPStatus.UNPROCESSABLE_ENTITY),
            )
        return report

    @model_api.get("/model", response_model=ModelInfo, summary="The serving model")
    async def model_info(self) -> ModelInfo:
        ready, reason = self.holder.readiness()
        info = ModelInfo(
            ready=ready,
            not_ready_reason=reason,
            uri=self.source.uri,
            alias=self.source.alias,
            source=self.source.kind,
            adaptive_batching=self.settings.adaptive_batching,
            swaps=self.holder.swaps,
            failed_loads=self.holder.failed_loads,
            last_error=self.holder.last_error,
            refusals=self.holder.refusals,
        )
        refused = self.holder.refused
        if refused is not None:
            info = info.model_copy(update={"refused_version": refused.version, "refused_reason": refused.reason})
        model = self.holder.current
        if model is not None:
            info = info.model_copy(
                update={
                    "name": model.name,
                    "version": model.version,
                    "alias": model.alias,
                    "labels": model.labels,
                    "gold_f1": model.gold_f1,
                    "dev_f1": model.dev_f1,
                    "loaded_at": model.loaded_at,
                    "provider": model.provider,
                    "requested_providers": model.requested_providers,
                    "promotion": model.extra.get("promotion"),
                }
            )
        return info

    # --- the adaptive-batched inference method -----------------------------------------------
    @bentoml.api(
        route="/internal/infer",
        input_spec=InferRequest,
        batchable=SETTINGS.adaptive_batching,
        max_batch_size=SETTINGS.max_batch_size,
        max_latency_ms=SETTINGS.max_latency_ms,
    )
    def infer(self, texts: list[str]) -> list[TextResult]:
        """Internal: the adaptive-batched inference behind /extract and /extract_batch, called
        in-process through BentoML's dispatcher; over HTTP the request guard answers 404."""
        return self._predict(texts)

    # --- internals ---------------------------------------------------------------------------
    async def _infer(self, texts: list[str]) -> list[TextResult] | JSONResponse:
        if self.holder.current is None:
            _, reason = self.holder.readiness()
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"no model loaded yet ({reason})")
        if sum(len(t) for t in texts) > self.settings.long_text_chars:
            return await self._infer_long(texts)
        if not self.settings.adaptive_batching:
            return await anyio.to_thread.run_sync(self._predict, texts, limiter=self._limiter)
        if self._batched is None:
            self._batched = self._resolve_batched()
        try:
            return await self._batched(texts)
        except ServiceUnavailable:  # BentoML's dispatcher: the batch deadline would be missed
            return JSONResponse(
                {"error": f"overloaded: not answerable within SCINER_MAX_LATENCY_MS={self.settings.max_latency_ms}"},
                status_code=503,
                headers={"Retry-After": "1"},
            )

    async def _infer_long(self, texts: list[str]) -> list[TextResult] | JSONResponse:
        """A long request: pieces on the long lane, never in the adaptive batches of short ones."""
        model = self.holder.current
        if model is None:
            _, reason = self.holder.readiness()
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"no model loaded yet ({reason})")
        if not self._long.try_admit():
            return JSONResponse(
                {"error": f"overloaded: {self._long.max_requests} long requests are running "
                 "(SCINER_LONG_LANE_MAX_REQUESTS); retry later"},
                status_code=503,
                headers={"Retry-After": "2"},
            )  # fmt: skip
        try:
            results = await self._long.run(model, texts, self._predict_chunk)
        finally:
            self._long.release()
        self.metrics.observe_entities(Counter(e.label for r in results for e in r.entities))
        return results

    def _resolve_batched(self) -> Batched:
        """BentoML's dispatcher for ``infer``, called in-process (:mod:`service.dispatcher`); else
        no batching. Should a BentoML upgrade move the dispatcher, requests run unbatched (as with
        ``SCINER_ADAPTIVE_BATCHING=false``) and a WARNING says so."""
        factory = batch_factory(self, INFER)
        if factory is not None:
            wait_ms = self.settings.batch_wait_ms
            capped = wait_ms is not None and cap_batch_wait(factory.dispatchers[INFER], wait_ms / 1000)
            log_event(log, "batching_path", path="in-process dispatcher", wait_cap_ms=wait_ms if capped else None)
            return batched_call(factory, INFER)
        log_event(log, "batching_path", level=logging.WARNING, path="unbatched (BentoML's dispatcher not found)")

        async def unbatched(texts: list[str]) -> list[TextResult]:
            return await anyio.to_thread.run_sync(self._predict, texts, limiter=self._limiter)

        return unbatched

    def _predict(self, texts: list[str]) -> list[TextResult]:
        """Run the serving model on ``texts`` (blocking). The model is read once: a swap during
        the call does not affect it. One failing text fails alone."""
        model = self.holder.current
        if model is None:
            return [TextResult(error="no model loaded") for _ in texts]
        parts = 1 if model.provider in GPU_PROVIDERS else self._parts
        plan = split_parts([len(t) for t in texts], parts, self.settings.batch_max_chars)

        def run(chunks: list[list[int]]) -> list[tuple[list[int], list[TextResult]]]:
            return [(chunk, self._predict_chunk(model, [texts[i] for i in chunk])) for chunk in chunks]

        others = [self._pool.submit(run, part) for part in plan[1:]]
        done = run(plan[0]) if plan else []
        for future in others:
            done.extend(future.result())
        results: list[TextResult | None] = [None] * len(texts)
        tally: Counter[str] = Counter()
        for chunk, chunk_results in done:
            for i, result in zip(chunk, chunk_results, strict=True):
                results[i] = result
                tally.update(e.label for e in result.entities)
        self.metrics.observe_entities(tally)
        return results  # type: ignore[return-value]

    def _predict_chunk(self, model: LoadedModel, texts: list[str], propagate: bool = True) -> list[TextResult]:
        try:
            preds = model.predictor.predict_texts(texts, propagate)
        except Exception:
            if len(texts) == 1:
                self.metrics.text_errors.inc()
                log.exception("prediction failed (model %s, %d chars)", model.version, len(texts[0]))
                return [TextResult(model_version=model.version, error="prediction failed")]
            # isolate the culprit: one bad text must not fail its batch neighbours
            return [r for t in texts for r in self._predict_chunk(model, [t], propagate)]
        return [TextResult(entities=p.entities, windows=p.windows, model_version=model.version) for p in preds]


SciNER.add_asgi_middleware(
    RequestGuard, body_models=BODY_MODELS, max_body_bytes=MAX_BODY_BYTES, config=GuardConfig.from_settings(SETTINGS)
)
SciNER.add_asgi_middleware(PublicOpenAPI)  # /docs.json lists only the routes a client can call
