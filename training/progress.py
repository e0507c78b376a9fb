"""Progress of long CLI work: a tqdm bar on a terminal, periodic log lines otherwise.

A job started with ``nohup ... > var/x.log`` has no terminal, so a bar would be either disabled
(nothing to watch for an hour) or a stream of carriage returns in the log. :class:`LoggedProgress`
keeps the bar's interface (``update``, ``set_postfix``, ``close``) and writes one log line at most
every ``interval_s`` seconds: done/total, rate and time left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from tqdm.auto import tqdm

log = logging.getLogger("sciner.progress")


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, **kwargs: Any) -> Any: ...
    def close(self) -> Any: ...


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class LoggedProgress:
    """Logs ``desc done/total unit (pct), rate, time left, postfix`` every ``interval_s`` seconds
    and once at ``close``; ``interval_s <= 0`` logs only at ``close``."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.total, self.desc, self.unit, self.interval_s = total, desc, unit, interval_s
        self.clock = clock
        self.emit = emit or log.info
        self.done = 0
        self.postfix: dict[str, Any] = {}
        self.started = self.last = clock()
        self.closed = False

    def line(self) -> str:
        elapsed = self.clock() - self.started
        pct = 100.0 * self.done / self.total if self.total else 100.0
        parts = [f"{self.desc} {self.done}/{self.total} {self.unit} ({pct:.0f}%)", f"{_minutes(elapsed)} elapsed"]
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            parts.append(f"{rate:.2f} {self.unit}/s")
            parts.append(f"{_minutes(max(self.total - self.done, 0) / rate)} left")
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        return ", ".join(parts)

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.interval_s > 0 and now - self.last >= self.interval_s:
            self.last = now
            self.emit(self.line())

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = dict(kwargs)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.emit(self.line())


def progress_bar(total: int, desc: str, unit: str, terminal: bool, interval_s: float | None = None) -> Progress:
    """A tqdm bar when ``terminal`` (an interactive run), else :class:`LoggedProgress` logging every
    ``interval_s`` seconds (default ``SCINER_PROGRESS_LOG_SECONDS``)."""
    if terminal:
        return tqdm(total=total, desc=desc, unit=unit)
    if interval_s is None:
        from sciner.settings import get_settings

        interval_s = get_settings().progress_log_seconds
    return LoggedProgress(total, desc, unit, interval_s)
