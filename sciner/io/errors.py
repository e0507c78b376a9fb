from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Invalid input data, naming the file, the line (1-based) and the reason."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
