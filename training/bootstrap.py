"""The bootstrap: train on gold only and register the first version as ``champion`` (when the
registered model has none)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sciner import registry
from sciner.model_dir import read_metadata
from sciner.paper_tables import REGISTERED
from sciner.papers import PaperStore
from sciner.settings import Settings
from training.aliases import champion_version as _champion
from training.aliases import check_registry
from training.aliases import now as _now
from training.aliases import registry_call as _registry_call
from training.gold import load_gold
from training.lineage import TAG as LINEAGE_TAG
from training.lineage import lineage
from training.locking import Heartbeat, RoundLock
from training.promotion import PROMOTED, REJECTED
from training.review import write_review
from training.round_common import (
    RoundResult,
    Stages,
    evaluate_model,
    fresh_round_dir,
    mark_failed,
    round_params,
    short_model_name,
)
from training.verdict import bootstrap_headline
from training.verdict import description as version_description


def run_bootstrap(settings: Settings, *, wait: float = 0.0, progress: bool = True, force: bool = False) -> RoundResult:
    """Train on gold train and register version + ``champion`` when the model has no champion."""
    lock = RoundLock(settings.round_lock_path, "bootstrap")
    lock.acquire(wait)
    heartbeat = Heartbeat(settings.heartbeat_path, settings.heartbeat_seconds, state="bootstrap").start()
    try:
        check_registry(settings)
        champion = _champion(settings)
        if champion is not None and not force:
            return RoundResult(
                "exists",
                reason=f"champion is already v{champion.version}; nothing to do",
                version=champion.version,
                champion_before=champion.version,
                champion_after=champion.version,
            )
        store = PaperStore.from_settings(settings)
        round_id = store.start_round(champion.version if champion else None)
        try:
            return _bootstrap_body(settings, store, round_id, champion, progress, heartbeat)
        except BaseException as exc:
            mark_failed(store, round_id, exc)
            raise
        finally:
            store.close()
    finally:
        heartbeat.stop(state="idle")
        lock.release()


def _bootstrap_body(
    settings: Settings,
    store: PaperStore,
    round_id: int,
    champion: registry.RegisteredVersion | None,
    progress: bool,
    heartbeat: Heartbeat,
) -> RoundResult:
    from sciner.predictor import Predictor
    from training.pipeline import train_and_export

    round_dir = fresh_round_dir(settings, round_id)
    stage = Stages(f"{round_id}(bootstrap)", round_dir / "progress.json", heartbeat)
    with stage("load_gold"):
        gold = load_gold(settings)
    with stage("train"):
        candidate_dir = round_dir / "candidate"
        summary = train_and_export(
            gold.train_all,
            gold.dev,
            candidate_dir,
            settings,
            sources={"train": Path(gold.paths["train"]), "dev": Path(gold.paths["dev"])},
            progress=progress,
            held_out=gold.split,
        )
    with stage("evaluate"):
        cand_eval, cand_pred = evaluate_model(Predictor.from_model_dir(candidate_dir, settings), gold.eval)
    promote = champion is None
    if promote:
        reason = (
            f"Promoted: bootstrap model trained on the {len(gold.train_all)} gold train sentences only, "
            f"eval micro-F1 {cand_eval.micro_f1:.4f}; the registered model had no champion."
        )
    else:
        reason = (
            f"Not promoted: bootstrap forced while v{champion.version} is champion "
            f"(eval micro-F1 {cand_eval.micro_f1:.4f}); promote it by hand if wanted."
        )
    stats = {
        "gold_train_sentences": len(gold.train),
        "gold_addition_sentences": len(gold.additions),
        "gold_eval_sentences": len(gold.eval),
        "auto_sentences": 0,
        "best_epoch": summary.get("best_epoch"),
    }
    verdict = bootstrap_headline(promote, cand_eval.micro_f1, champion.version if champion else None)
    meta = read_metadata(candidate_dir)
    data_lineage = lineage(
        gold_paths=gold.paths,
        gold_hashes=gold.hashes,
        train_sha256=str(meta.data.get("train", {}).get("sha256", "")),
        base_model=short_model_name(settings.base_model),
    )
    with stage("review"):
        review_dir = write_review(
            round_dir / "review",
            gold=gold.eval,
            candidate_eval=cand_eval,
            candidate_pred=cand_pred,
            sample_size=settings.review_sample_size,
            title=f"Round {round_id}: bootstrap model",
            verdict=f"{verdict}. {reason}",
            decision=PROMOTED if promote else REJECTED,
            extra_json={
                "decision": {"decision": PROMOTED if promote else REJECTED, "promote": promote, "reason": reason},
                "lineage": data_lineage,
                "summary": {
                    "round": round_id,
                    "stats": stats,
                    "gold": gold.paths,
                    "gold_sha256": gold.hashes,
                    "train_summary": summary,
                },
            },
        )
    tags = {
        "decision": PROMOTED if promote else REJECTED,
        "reason": reason,
        "parent_version": "",
        "round_id": str(round_id),
        "kind": "bootstrap",
        LINEAGE_TAG: data_lineage[LINEAGE_TAG],
        **gold.split_tags,
        "base_model": short_model_name(settings.base_model),
    }
    metrics = {
        **cand_eval.as_flat_metrics("eval_"),
        "gold_train_sentences": float(len(gold.train)),
        "gold_addition_sentences": float(len(gold.additions)),
        "auto_sentences": 0.0,
        "gold_eval_sentences": float(len(gold.eval)),
        "promoted": float(promote),
    }
    with stage("register"):
        version = _registry_call(
            "registering the bootstrap model",
            registry.register_model_dir,
            settings,
            candidate_dir,
            run_name=f"bootstrap-{round_id}",
            params=round_params(settings, round_id, None, 0, 0),
            metrics={**metrics, **{f"stage_{k}_s": v for k, v in stage.timings.items()}},
            tags=tags,
            artifacts={"review": review_dir},
            description=version_description(verdict, reason, f"round {round_id}, bootstrap"),
        )
        champion_after = champion.version if champion else None
        if promote:
            now = _champion(settings)
            if now is None:
                _registry_call(
                    "setting the champion alias",
                    registry.set_alias,
                    settings,
                    settings.champion_alias,
                    version.version,
                    "bootstrap",
                )
                _registry_call(
                    "tagging the version",
                    registry.update_version,
                    settings,
                    version.version,
                    tags={"promoted_at": _now(), "promoted_by": "bootstrap"},
                )
                champion_after = version.version
            else:
                reason = f"Not promoted: v{now.version} became champion while the bootstrap model trained."
                _registry_call(
                    "tagging the version",
                    registry.update_version,
                    settings,
                    version.version,
                    tags={"decision": REJECTED, "reason": reason},
                    description=version_description(
                        f"Rejected: v{now.version} became champion", reason, f"round {round_id}, bootstrap"
                    ),
                )
                promote, champion_after = False, now.version
    store.finish_round(
        round_id,
        status=REGISTERED,
        decision=PROMOTED if promote else REJECTED,
        reason=reason,
        model_version=version.version,
        stats={**stats, "kind": "bootstrap", "timings": stage.timings},
    )
    if not settings.keep_round_models:
        shutil.rmtree(candidate_dir, ignore_errors=True)
    return RoundResult(
        REGISTERED,
        round_id,
        PROMOTED if promote else REJECTED,
        reason,
        version.version,
        champion.version if champion else None,
        champion_after,
        stage.timings,
        stats,
    )
