"""What a round writes besides the model: the auto-annotated snapshot (training data, every
prediction, active-learning tasks) and the flat metrics logged to its MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

from sciner.metrics import Evaluation
from sciner.model_dir import atomic_write_text
from sciner.records import Sentence
from sciner.settings import Settings
from training.lineage import TAG as LINEAGE_TAG
from training.promotion import Decision
from training.review import write_review_tasks


def write_snapshot(
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
        {
            "id": a.sentence.id,
            "paper_id": a.sentence.doc_id,
            "text": a.text,
            "confidence": a.confidence,
            "kept": a.kept,
            "round": round_id,
            "annotator_version": annotator,
            "entities": [e.model_dump() for e in a.entities],
        }
        for a in auto.sentences  # type: ignore[attr-defined]
    ]
    atomic_write_text(auto_dir / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    low = lowest_confidence(auto.sentences, settings.active_learning_count)  # type: ignore[attr-defined]
    write_review_tasks(
        auto_dir / "active_learning.json",
        [
            {
                "text": a.text,
                "entities": [e.model_dump() for e in a.entities],
                "id": a.sentence.id,
                "paper_id": a.sentence.doc_id,
                "confidence": a.confidence,
                "round": round_id,
                "annotator_version": annotator,
            }
            for a in low
        ],
        settings.registered_model_name,
    )
    return auto_file


def round_metrics(
    cand: Evaluation, champ: Evaluation, decision: Decision, thresholds: dict, stats: dict, auto_stats: dict
) -> dict[str, float]:
    m = gate_metrics(cand, champ, decision)
    for name, t in thresholds.items():
        m[f"threshold_{name}"] = t.threshold
    for key in (
        "papers_new",
        "papers_reused",
        "gold_train_sentences",
        "gold_addition_sentences",
        "gold_eval_sentences",
        "auto_sentences",
    ):
        m[key] = float(stats[key])
    m["auto_sentences_annotated"] = float(auto_stats.get("sentences", 0))  # before masking and balancing
    for key in (
        "entities_accepted",
        "entities_rejected",
        "masked_fraction",
        "dropped_gold_overlap",
        "dropped_empty",
        "sentences_with_entities",
    ):
        m[f"auto_{key}"] = float(auto_stats.get(key, 0))
    m["souped"] = float(bool(stats.get("souped")))
    if "trained_alone_eval_micro_f1" in stats:  # the round's model before averaging with the champion
        m["trained_alone_eval_micro_f1"] = float(stats["trained_alone_eval_micro_f1"])
    return m


def gate_tags(
    decision: Decision, parent_version: str, lineage_tag: str, split_tags: dict[str, str], base_model: str, kind: str
) -> dict[str, str]:
    """What every gated version is tagged with (rounds and challenges): the verdict, its parent, the data it
    came from, the evaluation split it was judged on and the gate's rule (mlflow/REVIEW.md lists them)."""
    return {
        "decision": decision.label,
        "reason": decision.reason,
        "parent_version": parent_version,
        "kind": kind,
        LINEAGE_TAG: lineage_tag,
        **split_tags,
        "gate_rule": decision.rule,
        "gate_fired": decision.fired,
        "base_model": base_model,
    }


def gate_metrics(cand: Evaluation, champ: Evaluation, decision: Decision) -> dict[str, float]:
    """What every gated version logs: both models' scores on the evaluation split and the gate's figures."""
    m: dict[str, float] = {}
    m.update(cand.as_flat_metrics("eval_"))
    m.update(champ.as_flat_metrics("champion_eval_"))
    m["f1_delta"] = decision.delta
    if decision.ci is not None:
        m.update(
            {
                "bootstrap_delta_lower": decision.ci.lower,
                "bootstrap_delta_upper": decision.ci.upper,
                "bootstrap_delta_mean": decision.ci.mean,
                "bootstrap_resamples": float(decision.ci.samples),
                "bootstrap_confidence": decision.ci.confidence,
                "bootstrap_documents": float(decision.ci.units),
            }
        )
    if decision.spread_threshold is not None:
        m["seed_spread_threshold"] = decision.spread_threshold
    for name, floor in decision.class_floors.items():
        m[f"class_floor_{name}"] = floor.f1
    m["promoted"] = float(decision.promote)
    return m
