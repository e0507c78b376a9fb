"""Readers and writers for the data formats sciner speaks: JSONL, CoNLL, Label Studio."""

from sciner.io.errors import DataError

__all__ = ["DataError"]
