"""Structured log lines: one JSON object per event, through the stdlib loggers BentoML configures."""

from __future__ import annotations

import json
import logging
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``{"event": event, **fields}`` as JSON (values that are not JSON types become strings)."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", json.dumps({"event": event, **fields}, default=str, ensure_ascii=False))


def enable_sciner_logs(level: str = "INFO") -> None:
    """Let ``sciner.*`` loggers through BentoML's logging setup.

    BentoML's server logging config disables loggers that existed before it ran and leaves the
    root at WARNING; re-enable ours and give them their own level (their lines reach BentoML's
    root handler, with its timestamps and worker ids).
    """
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (name == "sciner" or name.startswith("sciner.")) and isinstance(logger, logging.Logger):
            logger.disabled = False
    logging.getLogger("sciner").setLevel(level.upper())
