"""The long lane: requests with many characters run apart from the adaptive batches.

A 100,000-character text takes seconds of CPU. In an adaptive batch it would hold every short
request of that batch (and the batches queued behind it) for those seconds. Instead, a request
over ``SCINER_LONG_TEXT_CHARS`` characters in all is cut into pieces of whole sentences
(:mod:`service.pieces`) that run one predictor call at a time on the lane's own threads
(``SCINER_LONG_LANE_THREADS``, single-threaded ONNX runs):

* short requests keep their adaptive batches and every core; the lane's threads run at a lower
  priority (``SCINER_LONG_LANE_NICE``), so the CPU goes to short requests first;
* each long request queues one piece at a time, so several long requests take turns;
* at most ``SCINER_LONG_LANE_MAX_REQUESTS`` long requests are admitted per worker; more get 503
  with ``Retry-After`` (bounded memory, no unbounded queue);
* pieces are predicted without name propagation, which then runs over each whole text
  (``Predictor.propagate_text``), so a long text gets the entities it would get in one piece.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from service.logs import log_event
from service.pieces import assemble, plan_chunks
from service.schemas import TextResult
from service.state import LoadedModel

log = logging.getLogger("sciner.service.long_lane")

PredictChunk = Callable[[LoadedModel, list[str], bool], list[TextResult]]  # (model, texts, propagate)


def lower_priority(nice: int) -> None:
    """Raise this thread's niceness (Linux: per thread). Lowering one's own priority needs no privilege."""
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError) as exc:
        log_event(log, "long_lane_nice_failed", level=logging.WARNING, error=str(exc))


class LongLane:
    def __init__(self, threads: int, nice: int, max_requests: int, piece_chars: int) -> None:
        self.piece_chars = piece_chars
        self.max_requests = max_requests
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="sciner-long", initializer=lower_priority, initargs=(nice,)
        )
        self._active = 0

    @property
    def active(self) -> int:
        return self._active

    def try_admit(self) -> bool:
        """Take a slot (event-loop thread only); False when the lane is full."""
        if self._active >= self.max_requests:
            return False
        self._active += 1
        return True

    def release(self) -> None:
        self._active = max(0, self._active - 1)

    async def run(self, model: LoadedModel, texts: list[str], predict_chunk: PredictChunk) -> list[TextResult]:
        """Predict ``texts`` piece by piece on the lane; results in text offsets, in order."""
        loop = asyncio.get_running_loop()
        chunks = await loop.run_in_executor(self._pool, plan_chunks, texts, self.piece_chars)
        done = []
        for chunk in chunks:
            pieces = [texts[p.text_index][p.start : p.end] for p in chunk]
            results = await loop.run_in_executor(self._pool, predict_chunk, model, pieces, False)
            for piece, result in zip(chunk, results, strict=True):
                done.append((piece, None if result.error is not None else result.entities, result.windows))
        return await loop.run_in_executor(self._pool, finish, model, texts, done)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def finish(model: LoadedModel, texts: list[str], done: list) -> list[TextResult]:
    """Pieces put back together per text, and names propagated over each whole text."""
    return [
        TextResult(
            entities=a.entities if a.error else model.predictor.propagate_text(text, a.entities),
            windows=a.windows,
            model_version=model.version,
            error="prediction failed" if a.error else None,
        )
        for text, a in zip(texts, assemble(len(texts), done), strict=True)
    ]
