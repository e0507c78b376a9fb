"""The gate of a round: judge the candidate against the champion on the evaluation split, and move the
``champion`` alias only if the gate passed and nobody moved it meanwhile (rounds: :mod:`training.rounds`;
the decision rule itself, pure: :mod:`training.promotion`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sciner import registry
from sciner.metrics import Evaluation
from sciner.settings import Settings
from training.aliases import champion_version as _champion
from training.aliases import now as _now
from training.aliases import registry_call as _registry_call
from training.eval_split import document_of
from training.gate_history import promoted_class_scores
from training.gold import Gold
from training.promotion import (
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
from training.round_common import gold_tags
from training.verdict import decision_headline
from training.verdict import description as version_description


def gate(
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


def recheck_champion(settings: Settings, champion: registry.RegisteredVersion, decision: Decision) -> Decision:
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


def promote_if_unchanged(
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


def register_gated(
    settings: Settings,
    champion: registry.RegisteredVersion,
    decision: Decision,
    model_dir: Path,
    *,
    what: str,
    **registration: Any,
) -> tuple[registry.RegisteredVersion, str]:
    """Register a gated model (``registration``: :func:`sciner.registry.register_model_dir`'s keywords), point
    the ``challenger`` alias at it, and make it champion if the gate passed and nobody moved the champion
    meanwhile. Returns the version and the champion afterwards."""
    registered = _registry_call(
        f"registering the {what}", registry.register_model_dir, settings, model_dir, **registration
    )
    _registry_call(
        "setting the challenger alias", registry.set_alias, settings, settings.challenger_alias, registered.version
    )
    champion_after = champion.version
    if decision.promote:
        champion_after = promote_if_unchanged(settings, champion, registered.version, decision)
    return registered, champion_after


def write_gate_review(
    review_dir: Path,
    settings: Settings,
    gold: Gold,
    decision: Decision,
    champion: str,
    *,
    title: str,
    candidate: tuple[Evaluation, list[list[str]]],
    champ: tuple[Evaluation, list[list[str]]],
    extra_json: dict[str, object],
) -> str:
    """The ``review/`` folder of a gated model (evaluation split, candidate beside champion ``champion``, the
    decision first in its JSON); returns the verdict's headline, which also opens the version's description."""
    headline = decision_headline(decision.to_dict(), champion, settings.min_f1_delta)
    write_review(
        review_dir,
        gold=gold.eval,
        candidate_eval=candidate[0],
        candidate_pred=candidate[1],
        champion_eval=champ[0],
        champion_pred=champ[1],
        champion_name=f"champion v{champion}",
        sample_size=settings.review_sample_size,
        title=title,
        verdict=f"{headline}. {decision.reason}",
        decision=decision.label,
        extra_json={"decision": decision.to_dict(), **extra_json},
    )
    return headline
