"""Registered versions downloaded for serving: once per host, under a lock, old ones pruned."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sciner.settings import Settings


def serving_dir(settings: Settings) -> Path:
    return settings.models_dir / "serving"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) held for the ``with`` block; blocks until free."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_version(settings: Settings, version: str, dest_root: Path, keep: int = 3) -> Path:
    """Download a registered version once per host, even with several workers polling at the same
    time (they take turns on a lock; later ones find the folder), and prune old downloads."""
    from sciner.registry import fetch_model_dir

    with file_lock(dest_root / ".fetch.lock"):
        model_dir = fetch_model_dir(settings, version, dest_root)
        prune_downloads(dest_root, settings.registered_model_name, keep=keep, protect=model_dir)
    return model_dir


def prune_downloads(dest_root: Path, name: str, keep: int, protect: Path) -> list[Path]:
    """Delete all but the ``keep`` most recently downloaded versions of ``name`` (never ``protect``'s).
    Loaded predictors do not need their folder: ONNX and the tokenizer are read into memory."""
    folders = sorted(
        (p for p in dest_root.glob(f"{name}-v*") if p.is_dir() and p.name.removeprefix(f"{name}-v").isdigit()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed = []
    for folder in folders[keep:]:
        if folder in protect.parents or folder == protect:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
