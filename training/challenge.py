"""``sciner challenge``: a model trained outside the loop (a GPU run, a distilled student, a soup) goes through
the same gate as a round's candidate, and is registered with its verdict.

    lock -> champion -> gold (the gate's evaluation split) -> did the model leave that split out?
    (:mod:`training.held_out`; else refused, or registered on a stated reason) -> evaluate model and
    champion on it (same code as rounds) -> gate (:mod:`training.gate`) -> review (kept locally only until
    it is registered as the version's artifact) -> register version
    -> alias challenger -> alias champion (if promoted and the champion did not move meanwhile)

Nothing changes in the paper store: a challenge uses no papers. The model folder is only read.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from sciner import registry
from sciner.model_dir import onnx_path, read_metadata
from sciner.settings import Settings
from training.aliases import champion_version as _champion
from training.aliases import check_registry
from training.aliases import registry_call as _registry_call
from training.errors import RoundError
from training.gate import gate, recheck_champion, register_gated, write_gate_review
from training.gold import load_gold
from training.held_out import held_out_problems
from training.lineage import TAG as LINEAGE_TAG
from training.lineage import lineage
from training.locking import RoundLock
from training.promotion import PROMOTED, REJECTED
from training.round_common import RoundResult, Stages, evaluate_model, short_model_name
from training.round_records import gate_metrics, gate_tags
from training.verdict import description as version_description

log = logging.getLogger("sciner.challenge")

KIND = "challenge"


class ChallengeInputError(RoundError):
    """The folder is not a servable sciner model, or the gate could not judge it fairly."""


def run_challenge(
    settings: Settings, model_dir: Path, *, why: str = "", trust_split: str = "", wait: float = 0.0
) -> RoundResult:
    """Judge ``model_dir`` against the champion under the round lock (no round runs meanwhile) and register it.

    ``trust_split``: register a model that does not record leaving out the gate's evaluation split anyway;
    the reason goes on the version (tag ``split_check``) next to what is missing."""
    lock = RoundLock(settings.round_lock_path, KIND)
    lock.acquire(wait)
    try:
        return _challenge_locked(settings, Path(model_dir), why, trust_split)
    finally:
        lock.release()


def split_check(problems: list[str], trust_split: str, model_name: str) -> str:
    """What the version records about the split, or :class:`ChallengeInputError` when nothing vouches for it."""
    if not problems:
        return "recorded: left out the gate's evaluation split"
    if not trust_split.strip():
        raise ChallengeInputError(
            f"the gate cannot judge {model_name} fairly: {'; '.join(problems)}. Train it with "
            "--exclude-eval-split (SCINER_GOLD_EVAL_* as here), or pass --trust-split REASON to register it "
            "anyway with that reason on the version"
        )
    return f"trusted: {trust_split.strip()} (not recorded: {'; '.join(problems)})"


def _challenge_locked(settings: Settings, model_dir: Path, why: str, trust_split: str) -> RoundResult:
    from sciner.predictor import Predictor

    check_registry(settings)
    champion = _champion(settings)
    if champion is None:
        raise RoundError(
            f"registered model {settings.registered_model_name!r} has no {settings.champion_alias!r} alias: "
            "nothing to challenge; run `sciner bootstrap` first"
        )
    try:
        meta = read_metadata(model_dir)
    except FileNotFoundError as exc:
        raise ChallengeInputError(str(exc)) from exc  # "<folder> is not a sciner model folder: ..."
    except (ValueError, TypeError) as exc:
        raise ChallengeInputError(f"{model_dir}'s sciner.json cannot be read: {exc}") from exc
    stage = Stages(KIND, None, None)
    with stage("load_gold"):
        gold = load_gold(settings)
    checked = split_check(held_out_problems(meta.data, gold.split.sha256, model_dir.name), trust_split, model_dir.name)
    served = onnx_path(model_dir, settings.onnx_variant)
    if not served.is_file():  # the service loads ONNX only: a folder without it could not serve
        raise ChallengeInputError(
            f"{model_dir} has no {settings.onnx_variant} ONNX model ({served}); "
            f"export it first: sciner export {model_dir}"
        )
    candidate = Predictor.from_model_dir(model_dir, settings)
    with stage("load_champion"):
        champ_dir = _registry_call(
            f"downloading champion v{champion.version}",
            registry.fetch_model_dir,
            settings,
            champion.version,
            settings.home / "cache" / "registry",
        )
        champ = Predictor.from_model_dir(champ_dir, settings)
    with stage("evaluate"):
        cand_eval, cand_pred = evaluate_model(candidate, gold.eval)
        champ_eval, champ_pred = evaluate_model(champ, gold.eval)
    with stage("decide"):
        decision = gate(settings, gold, champion.version, cand_eval, cand_pred, champ_eval, champ_pred)
        decision = recheck_champion(settings, champion, decision)
    log.info("challenge %s: %s %s", model_dir, decision.label, decision.reason)
    base_model = short_model_name(meta.base_model)
    data_lineage = lineage(
        gold_paths=gold.paths,
        gold_hashes=gold.hashes,
        train_sha256=str(meta.data.get("train", {}).get("sha256", "")),
        base_model=base_model,
    )
    review_dir = settings.home / "challenges" / f"{time.strftime('%Y%m%dT%H%M%S')}-{model_dir.name}" / "review"
    with stage("review"):
        verdict = write_gate_review(
            review_dir,
            settings,
            gold,
            decision,
            champion.version,
            title=f"Challenge: {model_dir.name} vs champion v{champion.version}",
            candidate=(cand_eval, cand_pred),
            champ=(champ_eval, champ_pred),
            extra_json={
                "lineage": data_lineage,
                "summary": {"challenge": str(model_dir), "split_check": checked, "why": why, "model_data": meta.data},
            },
        )
    tags = gate_tags(decision, champion.version, data_lineage[LINEAGE_TAG], gold.split_tags, base_model, kind=KIND)
    tags.update({"challenge_source": str(model_dir.resolve()), "split_check": checked})
    if why:
        tags["challenge_reason"] = why
    context = f"challenge of {model_dir.name} against v{champion.version}, {len(gold.eval)} gold evaluation sentences"
    context += f"; split {checked}" + (f"; {why}" if why else "")
    with stage("register"):
        try:
            version, champion_after = register_gated(
                settings,
                champion,
                decision,
                model_dir,
                what="challenger",
                run_name=f"challenge-{model_dir.name}",
                params={"challenge_source": str(model_dir.resolve()), "base_model": meta.base_model},
                metrics={**gate_metrics(cand_eval, champ_eval, decision), "gold_eval_sentences": float(len(gold.eval))},
                tags=tags,
                artifacts={"review": review_dir},
                description=version_description(verdict, decision.reason, context),
            )
        except RoundError:
            log.warning("challenge not registered; its review stays in %s", review_dir)
            raise
    shutil.rmtree(review_dir.parent, ignore_errors=True)  # registered: the review is the version's artifact
    final = PROMOTED if champion_after == version.version else REJECTED
    log.info("challenge registered v%s decision=%s champion=v%s", version.version, final, champion_after)
    return RoundResult(
        "registered",
        None,
        final,
        decision.reason,
        version.version,
        champion.version,
        champion_after,
        stage.timings,
        {"split_check": checked, "gold_eval_sentences": len(gold.eval)},
    )
