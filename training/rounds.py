"""One self-training round (the bootstrap: :mod:`training.bootstrap`; alias moves by hand: :mod:`training.aliases`).

A round (``sciner retrain --once``), in order::

    lock -> champion -> unused papers -> split -> annotator (champion, or SCINER_ANNOTATOR_MODEL's teacher)
    -> predict (shared Predictor) -> per-class thresholds
    + masking -> snapshot -> [the teacher's soft targets, SCINER_ROUND_DISTILL]
    -> train a fresh model from the base encoder on gold + auto -> candidate: its weights averaged with
    the champion's if that scores at least as well on gold dev (SCINER_ROUND_SOUP, :mod:`training.round_soup`)
    -> export -> evaluate
    candidate and champion on the gate's evaluation split (same code; never trained, stopped or
    calibrated on) -> gate (:mod:`training.gate`, rule: :mod:`training.promotion`) -> register version
    -> alias challenger -> re-read champion -> alias champion (if promoted) -> mark papers used -> unlock

Nothing is marked used before the registry write succeeded: a round that dies (SIGKILL included)
leaves the champion and the paper store as they were, and the kernel releases its lock.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from sciner import registry
from sciner.labels import ENTITY_TYPES, OUTSIDE, labels_of
from sciner.model_dir import read_metadata, sha256_file, write_metadata
from sciner.paper_records import Paper
from sciner.paper_tables import REGISTERED
from sciner.papers import PaperStore
from sciner.settings import Settings
from training.aliases import AliasMove, check_registry, promote_version, rollback  # noqa: F401 (re-exported)
from training.aliases import champion_version as _champion
from training.aliases import registry_call as _registry_call
from training.errors import RoundError
from training.gate import gate, recheck_champion, register_gated, write_gate_review
from training.gold import load_gold
from training.lineage import TAG as LINEAGE_TAG
from training.lineage import lineage
from training.locking import Heartbeat, RoundLock
from training.promotion import PROMOTED, REJECTED
from training.round_common import (
    RoundResult,
    Stages,
    clean_old_round_dirs,
    evaluate_model,
    fresh_round_dir,
    log_late_metrics,
    mark_failed,
    prune_cache,
    round_params,
    short_model_name,
)
from training.round_records import gate_tags, round_metrics, write_snapshot
from training.verdict import description as version_description

log = logging.getLogger("sciner.rounds")


# --- the round -------------------------------------------------------------------------------
def round_training_settings(settings: Settings) -> Settings:
    """What a round trains its model with: the crowd layer as ``round_crowd_layer`` says, not ``crowd_layer``
    (the layer helps gold-only training, not a round's gold + auto-annotated mix; docs/quality.md)."""
    return settings.model_copy(update={"crowd_layer": settings.round_crowd_layer})


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
    from training.distill import round_soft_targets
    from training.pipeline import export_and_score, train_and_export
    from training.round_soup import champion_checkpoint, dev_f1, keep_if_not_worse_on_dev, soup_with_champion
    from training.thresholds import calibrate_thresholds, thresholds_to_dict

    round_dir = fresh_round_dir(settings, round_id)
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
        dev_preds = annotator.predictor.predict_records(gold.dev)
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
    soft_targets = None
    if settings.round_distill:  # the annotator teaches: the teacher folder, or else the champion (self-distillation)
        with stage("teacher_soft_targets"):
            student_labels = labels_of(s.tags for s in [*train_set, *gold.dev])
            soft_targets = round_soft_targets(
                settings.annotator_model or champ_dir, [gold.train_all, auto_train], student_labels, settings, progress
            )
    log.info("round=%d stage=train gold=%d auto=%d", round_id, len(gold.train_all), len(auto_train))
    with stage("train"):
        trained_dir = round_dir / "trained"
        summary = train_and_export(
            train_set,
            gold.dev,
            trained_dir,
            round_training_settings(settings),
            sources={"train": Path(gold.paths["train"]), "dev": Path(gold.paths["dev"])},
            progress=progress,
            soft_targets=soft_targets,
            finish=False,
            held_out=gold.split,
        )
    with stage("soup"):
        checkpoint = champion_checkpoint(settings, champion.version)
        soup = soup_with_champion(
            settings, trained_dir, champ_dir, champion.version, checkpoint, round_dir / "candidate", round_id
        )
    with stage("export"):
        alone = export_and_score(trained_dir, gold.dev, settings, train=train_set)
        if soup.souped:  # greedy soup: the average stays only if it scores at least as well on gold dev
            souped = export_and_score(soup.model_dir, gold.dev, settings, train=train_set)
            soup = keep_if_not_worse_on_dev(soup, trained_dir, dev_f1(souped), dev_f1(alone))
        summary.update(souped if soup.souped else alone)
        candidate_dir = soup.model_dir
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
        trained_eval = None
        if soup.souped:  # the model the round trained, alone: what the average added, for the reviewer
            trained_eval, _ = evaluate_model(Predictor.from_model_dir(trained_dir, settings), gold.eval)
    with stage("decide"):
        decision = gate(settings, gold, champion.version, cand_eval, cand_pred, champ_eval, champ_pred)
        decision = recheck_champion(settings, champion, decision)
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
        "souped": soup.souped,
    }
    if trained_eval is not None:
        stats["trained_alone_eval_micro_f1"] = trained_eval.micro_f1
    data_lineage = lineage(
        gold_paths=gold.paths,
        gold_hashes=gold.hashes,
        train_sha256=str(meta.data.get("train", {}).get("sha256", "")),
        auto_sha256=auto_sha,
        base_model=short_model_name(settings.base_model),
        annotator_version=annotator.version,
        soft_targets_sha256=soft_targets.sha256 if soft_targets is not None else None,
    )
    with stage("review"):
        verdict = write_gate_review(
            review_dir,
            settings,
            gold,
            decision,
            champion.version,
            title=f"Round {round_id}: candidate vs champion v{champion.version}",
            candidate=(cand_eval, cand_pred),
            champ=(champ_eval, champ_pred),
            extra_json={
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
    distilled = ""
    if soft_targets is not None:
        distilled = (
            f"; distilled from its distributions on all {len(soft_targets)} "
            f"(alpha {settings.distill_alpha}, T {settings.distill_temperature}, {settings.distill_teacher_variant})"
        )
    description = version_description(
        verdict,
        decision.reason,
        f"round {round_id}, parent v{champion.version}, {len(gold.eval)} gold evaluation sentences, "
        f"{len(gold.train_all)} gold + {len(auto_train)} training sentences auto-annotated by {annotator.description}"
        + distilled
        + f"; {soup.note}"
        + (f" (trained alone: eval micro-F1 {trained_eval.micro_f1:.3f})" if trained_eval is not None else ""),
    )
    tags = gate_tags(
        decision,
        champion.version,
        data_lineage[LINEAGE_TAG],
        gold.split_tags,
        short_model_name(settings.base_model),
        kind="round",
    )
    tags.update({"round_id": str(round_id), "annotator": annotator.description})
    if soft_targets is not None:
        tags["distilled_from"] = annotator.description
    tags["soup"] = soup.note
    metrics = round_metrics(cand_eval, champ_eval, decision, thresholds, stats, auto.stats)
    params = round_params(settings, round_id, champion.version, len(new), len(reused))
    with stage("register"):
        version, champion_after = register_gated(
            settings,
            champion,
            decision,
            candidate_dir,
            what="candidate",
            run_name=f"round-{round_id}",
            params=params,
            metrics={**metrics, **{f"stage_{k}_s": v for k, v in stage.timings.items()}},
            tags=tags,
            artifacts={"review": review_dir, "auto": auto_dir},
            description=description,
        )
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
        for folder in (trained_dir, round_dir / "candidate"):  # the candidate is one of them (or a dropped soup)
            shutil.rmtree(folder, ignore_errors=True)
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
