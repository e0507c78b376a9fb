"""The service's one reach into BentoML internals: its adaptive batcher, called in-process.

``self.to_async.infer`` (BentoML's public way to call a batchable API of the same service) sends
each call through an in-process HTTP round trip (middlewares, JSON both ways), which costs about as
much CPU as the model on one short sentence, and the request guard closes the ``/internal/`` routes
to HTTP. The service app factory's ``batch_infer`` is the very function that route ends in, minus
that round trip, so the batching (CorkDispatcher, ``max_batch_size``, ``max_latency_ms``) is still
BentoML's.

Everything here reads private attributes of BentoML 1.4 (pinned in ``pyproject.toml``), each through
``getattr`` so an upgrade that moves them returns ``None``/``False`` instead of raising; the service
then runs unbatched and logs a WARNING. Two tests fail loudly on such an upgrade:
``tests/test_service_units.py::test_batch_wait_cap_holds_against_bentomls_learned_wait`` (the
dispatcher's learned wait) and ``tests/test_service_http.py::
test_concurrent_requests_are_batched_and_all_succeed`` (BentoML's batch-size metric, real server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

BatchCall = Callable[[list[str]], Awaitable[list[Any]]]


def batch_factory(service: object, api_name: str) -> Any | None:
    """BentoML's service app factory behind the batchable ``api_name`` of ``service`` (the
    service instance), or ``None`` when this BentoML keeps it elsewhere."""
    proxy: Any = getattr(service, "__self_proxy__", None)
    app = getattr(getattr(proxy, "to_async", None), "app", None)
    for route in getattr(app, "routes", None) or []:
        if getattr(route, "name", None) != api_name:
            continue
        factory = getattr(getattr(getattr(route, "endpoint", None), "func", None), "__self__", None)
        if api_name in getattr(factory, "dispatchers", {}) and callable(getattr(factory, "batch_infer", None)):
            return factory
    return None


def batched_call(factory: Any, api_name: str) -> BatchCall:
    """Call ``api_name`` through BentoML's dispatcher, in-process: ``await call(texts)``."""

    async def direct(texts: list[str]) -> list[Any]:
        return await factory.batch_infer(api_name, (texts,), {})

    return direct


def cap_batch_wait(dispatcher: Any, cap_s: float) -> bool:
    """Keep BentoML's CorkDispatcher from holding requests longer than ``cap_s`` to grow a batch.

    The dispatcher learns how long to wait for more requests from the waits it observed; after a
    burst (long queues) that learned wait stays high and, since each new batch then waits that
    long, decays only slowly: measured 80 ms per request at concurrency 1 for over a minute after a
    concurrency-64 phase. On CPU a bigger batch gains little, and requests queue by themselves
    while a batch runs (one batch at a time), so the wait is capped (0 by default).
    Returns False, changing nothing, when the dispatcher has no such optimizer.
    """
    optimizer = getattr(dispatcher, "optimizer", None)
    refresh = getattr(optimizer, "trigger_refresh", None)
    if optimizer is None or not callable(refresh) or not isinstance(getattr(optimizer, "wait", None), (int, float)):
        return False

    def capped_refresh() -> None:
        refresh()
        optimizer.wait = min(optimizer.wait, cap_s)

    optimizer.trigger_refresh = capped_refresh
    optimizer.wait = min(optimizer.wait, cap_s)
    return True
