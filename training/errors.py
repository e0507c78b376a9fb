"""The error of the self-training loop's commands (kept import-light: `sciner promote` needs only this)."""

from __future__ import annotations


class RoundError(RuntimeError):
    """A round (or an alias move) could not run or finish; the message says why. Nothing was marked used."""
