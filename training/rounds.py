"""One self-training round (the bootstrap: :mod:`training.bootstrap`; alias moves by hand: :mod:`training.aliases`).

A round (``sciner retrain --once``), in order::

    lock -> champion -> unused papers -> split -> annotator (champion, or SCINER_ANNOTATOR_MODEL's teacher)
    -> predict (shared Predictor) -> per-class thresholds
    + masking -> snapshot -> train a fresh candidate from the base encoder on gold + auto -> evaluate
    candidate and champion on the gate's evaluation split (same code; never trained, stopped or
    calibrated on) -> gate (:mod:`training.promotion`) -> register version -> alias challenger
    -> re-read champion -> alias champion (if promoted) -> mark papers used -> unlock

Nothing is marked used before the registry write succeeded: a round that dies (SIGKILL included)
leaves the champion and the paper store as they were, and the kernel releases its lock.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from sciner import registry
from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import Evaluation
from sciner.model_dir import read_metadata, sha256_file, write_metadata
from sciner.papers import REGISTERED, Paper, PaperStore
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
from training.review import write_review
from training.round_common import (
    RoundResult,
    Stages,
    clean_old_round_dirs,
    evaluate_model,
    gold_tags,
    log_late_metrics,
    mark_failed,
    prune_cache,
    round_params,
    short_model_name,
)
from training.round_records import round_metrics, write_snapshot
from training.verdict import decision_headline
from training.verdict import description as version_description

log = logging.getLogger("sciner.rounds")


# --- the round -------------------------------------------------------------------------------
def run_round(settings: Settings, *, wait: float = 0.0, force: bool = False, progress: bool = True) -> RoundResult:
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
            return RoundResult(
                "skipped", reason=reason, champion_before=champion.version, champion_after=champion.version
            )
        reused: list[Paper] = []
        if settings.reannotate_used_papers:
            reused = store.used_papers(settings.auto_pool_max_papers - len(new))
        round_id = store.start_round(champion.version)
        try:
            return _round_body(settings, store, round_id, champion, new, reused, progress, heartbeat)
        except BaseException as exc:
            mark_failed(store, round_id, exc)
            raise
    finally:
        store.close()


def _round_body(
    settings: Settings,
    store: PaperStore,
    round_id: int,
    champion: registry.RegisteredVersion,
    new: list[Paper],
    reused: list[Paper],
    progress: bool,
    heartbeat: Heartbeat,
) -> RoundResult:
    """The stages of one round, in order (a linear script on purpose)."""
    from sciner.predictor import Predictor
    from training.annotator import champion_annotator, teacher_annotator
    from training.autoannotate import annotate_papers, balance_empty, has_entity
    from training.pipeline import train_and_export
    from training.thresholds import calibrate_thresholds, thresholds_to_dict

    round_dir = settings.home / "rounds" / f"{round_id:05d}"
    shutil.rmtree(round_dir, ignore_errors=True)
    round_dir.mkdir(parents=True)
    clean_old_round_dirs(settings, round_dir)
    auto_dir, review_dir = round_dir / "auto", round_dir / "review"
    stage = Stages(str(round_id), round_dir / "progress.json", heartbeat)
    log.info("round=%d champion=v%s new_papers=%d reused_papers=%d", round_id, champion.version, len(new), len(reused))

    with stage("load_gold"):
        gold = load_gold(settings)
    with stage("load_champion"):
        champ_dir = _registry_call(
            f"downloading champion v{champion.version}",
            registry.fetch_model_dir,
            settings,
            champion.version,
            settings.home / "cache" / "registry",
        )
        champ = Predictor.from_model_dir(champ_dir, settings)
    annotator = champion_annotator(champ, champion.version)
    if settings.annotator_model is not None:
        with stage("load_annotator"):
            annotator = teacher_annotator(settings.annotator_model, settings)
    log.info("round=%d annotator=%s", round_id, annotator.description)
    with stage("calibrate"):
        dev_preds = annotator.predictor.predict_sentences([s.tokens for s in gold.dev])
        labels = annotator.predictor.labels
        classes = [t for t in ENTITY_TYPES if f"B-{t}" in labels] + sorted(
            {lab[2:] for lab in labels if lab != OUTSIDE} - set(ENTITY_TYPES)
        )
        thresholds = calibrate_thresholds(
            [s.tags or [] for s in gold.dev],
            [p.spans for p in dev_preds],
            classes,
            settings.target_precision,
            settings.threshold_min_entities,
            settings.threshold_default,
        )
        cut = {name: t.threshold for name, t in thresholds.items()}
        log.info("round=%d thresholds %s", round_id, json.dumps({k: round(v, 3) for k, v in cut.items()}))
    with stage("auto_annotate"):
        auto = annotate_papers(
            annotator.predictor.predict_sentences,
            labels,
            new + reused,
            cut,
            settings.o_confidence_floor,
            default_threshold=settings.threshold_default,
            round_id=round_id,
            progress=progress,
        )
        known = {tuple(s.tokens) for s in [*gold.train_all, *gold.dev, *gold.eval]}
        auto_train = [s for s in auto.training_sentences if tuple(s.tokens) not in known]
        auto.stats["dropped_gold_overlap"] = len(auto.training_sentences) - len(auto_train)
        auto_train, dropped_empty = balance_empty(auto_train, settings.auto_empty_ratio, settings.seed)
        auto.stats["dropped_empty"] = dropped_empty
        auto.stats["sentences_with_entities"] = sum(has_entity(s) for s in auto_train)
    with stage("snapshot"):
        auto_file = write_snapshot(settings, auto_dir, auto, auto_train, annotator.version, round_id)
        auto_sha = sha256_file(auto_file)
    train_set = gold.train_all + auto_train
    log.info("round=%d stage=train gold=%d auto=%d", round_id, len(gold.train_all), len(auto_train))
    with stage("train"):
        candidate_dir = round_dir / "candidate"
        summary = train_and_export(
            train_set,
            gold.dev,
            candidate_dir,
            settings,
            sources={"train": Path(gold.paths["train"]), "dev": Path(gold.paths["dev"])},
            export=True,
            progress=progress,
        )
        meta = read_metadata(candidate_dir)  # lineage: the auto-annotated part of the training data
        meta.data["auto"] = {
            "source": f"round {round_id}: auto/{auto_file.name}",
            "sha256": auto_sha,
            "sentences": len(auto_train),
            "annotator_version": annotator.version,
            "annotator": annotator.description,
        }
        meta.data["gold_additions"] = {
            "source": gold.paths["additions"],
            "sentences": len(gold.additions),
            "sha256": gold.hashes.get("additions"),
        }
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
        "papers_new": len(new),
        "papers_reused": len(reused),
        "gold_train_sentences": len(gold.train),
        "gold_addition_sentences": len(gold.additions),
        "gold_eval_sentences": len(gold.eval),
        "auto_sentences": len(auto_train),
        "auto": auto.stats,
        "best_epoch": summary.get("best_epoch"),
    }
    verdict = decision_headline(decision.to_dict(), champion.version, settings.min_f1_delta)
    data_lineage = lineage(
        gold_paths=gold.paths,
        gold_hashes=gold.hashes,
        train_sha256=str(meta.data.get("train", {}).get("sha256", "")),
        auto_sha256=auto_sha,
        base_model=short_model_name(settings.base_model),
        annotator_version=annotator.version,
    )
    with stage("review"):
        write_review(
            review_dir,
            gold=gold.eval,
            candidate_eval=cand_eval,
            candidate_pred=cand_pred,
            champion_eval=champ_eval,
            champion_pred=champ_pred,
            champion_name=f"champion v{champion.version}",
            sample_size=settings.review_sample_size,
            title=f"Round {round_id}: candidate vs champion v{champion.version}",
            verdict=f"{verdict}. {decision.reason}",
            decision=decision.label,
            extra_json={
                "decision": decision.to_dict(),
                "thresholds": thresholds_to_dict(thresholds),
                "lineage": data_lineage,
                "summary": {
                    "round": round_id,
                    "stats": stats,
                    "gold": gold.paths,
                    "gold_sha256": gold.hashes,
                    "auto_sha256": auto_sha,
                    "train_summary": summary,
                },
            },
        )
    description = version_description(
        verdict,
        decision.reason,
        f"round {round_id}, parent v{champion.version}, {len(gold.eval)} gold evaluation sentences, "
        f"{len(gold.train_all)} gold + {len(auto_train)} training sentences auto-annotated by {annotator.description}",
    )
    tags = {
        "decision": decision.label,
        "reason": decision.reason,
        "parent_version": champion.version,
        "round_id": str(round_id),
        "kind": "round",
        LINEAGE_TAG: data_lineage[LINEAGE_TAG],
        **gold.split_tags,
        "gate_rule": decision.rule,
        "gate_fired": decision.fired,
        "base_model": short_model_name(settings.base_model),
        "annotator": annotator.description,
    }
    metrics = round_metrics(cand_eval, champ_eval, decision, thresholds, stats, auto.stats)
    params = round_params(settings, round_id, champion.version, len(new), len(reused))
    with stage("register"):
        version = _registry_call(
            "registering the candidate",
            registry.register_model_dir,
            settings,
            candidate_dir,
            run_name=f"round-{round_id}",
            params=params,
            metrics={**metrics, **{f"stage_{k}_s": v for k, v in stage.timings.items()}},
            tags=tags,
            artifacts={"review": review_dir, "auto": auto_dir},
            description=description,
        )
        _registry_call(
            "setting the challenger alias", registry.set_alias, settings, settings.challenger_alias, version.version
        )
        champion_after = champion.version
        if decision.promote:
            champion_after = _promote_if_unchanged(settings, champion, version.version, decision)
    log_late_metrics(settings, version.run_id, {"stage_register_s": stage.timings["register"]})
    with stage("record"):
        final_decision = PROMOTED if champion_after == version.version else REJECTED
        store.finish_round(
            round_id,
            status=REGISTERED,
            decision=final_decision,
            reason=decision.reason,
            model_version=version.version,
            stats={**stats, "timings": stage.timings},
            new_papers=[p.pk for p in new],
            reused_papers=[p.pk for p in reused],
        )
    if not settings.keep_round_models:
        shutil.rmtree(candidate_dir, ignore_errors=True)
    prune_cache(settings, keep={champion_after, version.version})
    log.info(
        "round=%d registered v%s decision=%s champion=v%s", round_id, version.version, final_decision, champion_after
    )
    return RoundResult(
        REGISTERED,
        round_id,
        final_decision,
        decision.reason,
        version.version,
        champion.version,
        champion_after,
        stage.timings,
        stats,
    )


def _gate(
    settings: Settings,
    gold: Gold,
    champion: str,
    cand_eval: Evaluation,
    cand_pred: list[list[str]],
    champ_eval: Evaluation,
    champ_pred: list[list[str]],
) -> Decision:
    """Paired bootstrap over the evaluation split's documents, the seed-spread rule, and the per-class
    floor (best F1 per class among promoted versions on this split)."""
    truth = gold_tags(gold.eval)
    docs = [document_of(s) for s in gold.eval]
    cand_docs, _ = document_counts(sentence_counts(truth, cand_pred), docs)
    champ_docs, _ = document_counts(sentence_counts(truth, champ_pred), docs)
    ci = paired_bootstrap(
        cand_docs, champ_docs, settings.bootstrap_samples, settings.seed, confidence=settings.bootstrap_confidence
    )
    champ_scores = ModelScores.from_evaluation(champ_eval)
    history = _registry_call(
        "reading promoted versions on this split", promoted_class_scores, settings, gold.split.sha256
    )
    history.pop(champion, None)  # the champion counts as scored now, by this code
    return decide(
        ModelScores.from_evaluation(cand_eval),
        champ_scores,
        rule=settings.promotion_rule,
        min_f1_delta=settings.min_f1_delta,
        max_class_drop=settings.max_class_drop,
        ci=ci,
        seed_sd=settings.seed_f1_sd,
        spread_z=settings.spread_z,
        floors=class_floors(champ_scores, champion, history),
        champion_name=f"champion v{champion}",
    )


def _recheck_champion(settings: Settings, champion: registry.RegisteredVersion, decision: Decision) -> Decision:
    """The gate compared against ``champion``; if someone moved the alias meanwhile, do not overrule them."""
    if not decision.promote:
        return decision
    now = _champion(settings)
    if now is not None and now.version == champion.version:
        return decision
    moved_to = now.version if now else "none"
    decision.promote = False
    decision.reason = (
        f"Not promoted: the champion alias moved from v{champion.version} to v{moved_to} during "
        f"the round, so the comparison no longer holds (gate said: {decision.reason.rstrip('.')})."
    )
    return decision


def _promote_if_unchanged(
    settings: Settings, champion: registry.RegisteredVersion, version: str, decision: Decision
) -> str:
    """Re-read the champion right before moving it (the alias itself is last-writer-wins)."""
    now = _champion(settings)
    if now is not None and now.version != champion.version:
        reason = (
            f"Not promoted: the champion alias moved from v{champion.version} to v{now.version} just before promotion."
        )
        _registry_call(
            "tagging the version",
            registry.update_version,
            settings,
            version,
            tags={"decision": REJECTED, "reason": reason},
            description=version_description(
                f"Rejected: champion moved to v{now.version}", reason, "gate passed, not applied"
            ),
        )
        decision.promote, decision.reason = False, reason
        return now.version
    _registry_call("setting the champion alias", registry.set_alias, settings, settings.champion_alias, version, "gate")
    _registry_call(
        "tagging the version",
        registry.update_version,
        settings,
        version,
        tags={"champion_previous": champion.version, "promoted_at": _now(), "promoted_by": "gate"},
    )
    return version
