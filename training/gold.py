"""The gold data of a round or a bootstrap: train (without the gate's evaluation split), dev, eval, additions.

Dev selects (early stopping, the O-bias and per-class thresholds); the evaluation split judges (the
promotion gate) and nothing else sees it. Every round and the bootstrap call :func:`load_gold` with
the same settings, so they are judged on the same split, and every version records which
(:attr:`Gold.split_tags`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sciner.io import DataError
from sciner.model_dir import sha256_file
from sciner.records import Sentence
from sciner.settings import Settings
from training.errors import RoundError
from training.eval_split import EvalSplit, carve, document_of, from_file
from training.ingest import read_gold, resolve_data_path


class GoldError(RoundError):
    """Gold data is missing, unreadable or empty."""


@dataclass
class Gold:
    train: list[Sentence]  # gold train without the evaluation documents
    additions: list[Sentence]
    dev: list[Sentence]
    eval: list[Sentence]
    paths: dict[str, str]
    hashes: dict[str, str]
    split: EvalSplit

    @property
    def train_all(self) -> list[Sentence]:
        """Gold train with human additions; an addition replaces a train sentence with the same tokens."""
        added = {tuple(s.tokens) for s in self.additions}
        return [s for s in self.train if tuple(s.tokens) not in added] + self.additions

    @property
    def eval_is_dev(self) -> bool:
        return self.paths["eval"] == self.paths["dev"]

    @property
    def split_tags(self) -> dict[str, str]:
        return self.split.tags


def evaluation_split(
    train: list[Sentence], settings: Settings, dev: list[Sentence] | None = None, dev_path: Path | None = None
) -> EvalSplit:
    """The gate's evaluation split of ``train``: ``SCINER_GOLD_EVAL_PATH``'s documents when set (``dev`` is
    reused when that path is ``dev_path``), else the documents carved by ``SCINER_GOLD_EVAL_FRACTION`` and
    ``SCINER_GOLD_EVAL_SALT``. Rounds, the bootstrap and ``sciner train --exclude-eval-split`` share it."""
    if settings.gold_eval_path:
        eval_p = resolve_data_path(settings.gold_eval_path)
        evaluation = dev if dev is not None and eval_p == dev_path else read_gold(eval_p)
        return from_file(train, evaluation, str(eval_p))
    return carve(train, settings.gold_eval_fraction, settings.gold_eval_salt)


def load_gold(settings: Settings) -> Gold:
    try:
        train_p = resolve_data_path(settings.gold_train_path)
        dev_p = resolve_data_path(settings.gold_dev_path)
        train, dev = read_gold(train_p), read_gold(dev_p)
        split = evaluation_split(train, settings, dev, dev_p)
        eval_where = split.source.removeprefix("file:") if settings.gold_eval_path else f"{train_p} ({split.source})"
        add_p = settings.gold_additions_path
        additions = read_gold(add_p) if add_p.is_file() else []
    except DataError as exc:
        raise GoldError(f"gold data: {exc}") from exc
    if not split.train or not dev or not split.eval:
        raise GoldError("gold train (without the evaluation split), dev and evaluation splits must not be empty")
    held = set(split.documents)
    additions = [s for s in additions if document_of(s) not in held]
    paths = {"train": str(train_p), "dev": str(dev_p), "eval": eval_where, "additions": str(add_p)}
    hashes = {k: sha256_file(Path(p)) for k, p in paths.items() if k != "eval" and Path(p).is_file()}
    hashes["eval"] = split.sha256
    return Gold(split.train, additions, dev, split.eval, paths, hashes, split)
