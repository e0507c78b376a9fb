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
    redact_request_errors()


# BentoML logs a failed request parse as ERROR with the traceback, whose pydantic message quotes
# the input (``input_value=...``). The request guard validates bodies first, so this should not
# happen; should it still, the line is kept without the traceback and at INFO.
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"


class RedactValidationErrors(logging.Filter):
    """Drop the traceback (and so the quoted input) of pydantic validation errors from log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            summary = f"{exc.error_count()} validation error(s) for {exc.title} (input not logged)"
            record.msg = f"{record.getMessage()}: {summary}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def redact_request_errors() -> None:
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, RedactValidationErrors) for f in logger.filters):
        logger.addFilter(RedactValidationErrors())
