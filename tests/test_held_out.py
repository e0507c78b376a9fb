"""Whether the gate may judge a model trained outside the loop: what its folder records about the split it
left out (training/held_out.py), and what `sciner challenge` does with the answer (training/challenge.py)."""

from __future__ import annotations

import pytest

from sciner.records import Sentence
from training.challenge import ChallengeInputError, split_check
from training.eval_split import carve
from training.held_out import HELD_OUT_KEY, TEACHERS_KEY, held_out_problems, held_out_record

GATE = "a" * 64
OTHER = "b" * 64


def record(sha: str = GATE) -> dict:
    return {"eval_split": "carved:0.15:sciner-eval-v1", "eval_split_sha256": sha, "eval_split_documents": "2"}


def test_the_record_is_the_splits_tags():
    train = [Sentence(id=f"d{i}-0", tokens=["x"], tags=["O"], doc_id=f"d{i}") for i in range(20)]
    split = carve(train, 0.15, "salt")
    assert held_out_record(split) == split.tags
    assert held_out_problems({HELD_OUT_KEY: held_out_record(split)}, split.sha256) == []


def test_a_model_that_left_out_the_gates_split_can_be_judged():
    assert held_out_problems({"train": {"sha256": "t"}, HELD_OUT_KEY: record()}, GATE) == []


def test_a_model_without_a_record_or_with_another_split_cannot():
    (missing,) = held_out_problems({"train": {"sha256": "t"}}, GATE, "gpu-student")
    assert missing.startswith("gpu-student does not record which evaluation split it left out")
    (other,) = held_out_problems({HELD_OUT_KEY: record(OTHER)}, GATE, "gpu-student")
    assert "left out another evaluation split" in other and OTHER[:12] in other and GATE[:12] in other


def test_a_distilled_model_needs_each_teacher_to_have_left_out_the_split_too():
    def student(teachers: dict | None) -> dict:
        soft = {"sha256": "s", "teacher": "var/teacher", **({TEACHERS_KEY: teachers} if teachers is not None else {})}
        return {HELD_OUT_KEY: record(), "soft_targets": soft}

    assert held_out_problems(student({"var/t1": record(), "var/t2": record()}), GATE) == []
    (problem,) = held_out_problems(student({"var/t1": record(), "var/t2": None}), GATE, "student")
    assert problem.startswith("teacher var/t2 of student does not record")
    (unknown,) = held_out_problems(student(None), GATE, "student")
    assert unknown == "student learned from a teacher (var/teacher) whose split is not recorded"


def test_a_soup_is_judged_by_every_member():
    soup = {"soup_members": {"var/a": {HELD_OUT_KEY: record()}, "var/b": {HELD_OUT_KEY: record()}}}
    assert held_out_problems(soup, GATE) == []
    soup["soup_members"]["var/b"] = {"train": {}}
    (problem,) = held_out_problems(soup, GATE)
    assert problem.startswith("soup member var/b does not record")


def test_the_challenge_refuses_an_unvouched_model_unless_given_a_reason():
    assert split_check([], "", "m") == "recorded: left out the gate's evaluation split"
    with pytest.raises(ChallengeInputError, match=r"cannot judge m fairly: m does not record.*--trust-split REASON"):
        split_check(["m does not record which evaluation split it left out"], "  ", "m")
    trusted = split_check(["m does not record it"], "eval docs removed by hand", "m")
    assert trusted == "trusted: eval docs removed by hand (not recorded: m does not record it)"
