"""The rules that pick the O-logit bias from its dev scores (training/calibrate.py, SCINER_O_BIAS_RULE), and the
bench that reads how each carries to a team never seen (bench/bias_rules.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bias_rules import GridCounts, crossfitted, document_halves
from sciner.model_dir import read_metadata
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings
from training.calibrate import bias_grid, document_teams, fit_o_bias, pick_bias, team_median_bias, within_noise_bias

BIASES = [-0.5, 0.0, 0.5]


def _docs(tp: list[int], pred: int = 10, gold: int = 10) -> np.ndarray:
    """Strict counts of one document per entry: ``tp`` exact matches of ``pred`` predicted and ``gold`` gold."""
    return np.array([[t, pred, gold] for t in tp], dtype=np.int64)


def test_a_gain_every_document_shares_is_kept_by_the_within_noise_rule():
    counts = [_docs([4] * 10), _docs([5] * 10), _docs([7] * 10)]
    assert within_noise_bias(BIASES, counts) == 0.5 == pick_bias("best", BIASES, counts, [])


def test_a_gain_a_few_documents_carry_is_left_for_no_bias():
    noisy = [9, 1] * 5  # a mean of 5, as at 0, but swinging document by document
    noisy[0] = 10  # one more match: the best F1, by a margin far inside the noise
    counts = [_docs([4] * 10), _docs([5] * 10), _docs(noisy)]
    assert pick_bias("best", BIASES, counts, []) == 0.5
    assert within_noise_bias(BIASES, counts) == 0.0


def test_of_two_biases_as_far_from_zero_the_better_one_is_tried_first():
    biases = [-0.5, 0.0, 0.5, 1.0]
    # no bias is clearly worse than the best (1.0); -0.5 and +0.5 both lie within its noise, -0.5 a little higher
    counts = [_docs([10, 1] * 5), _docs([3] * 10), _docs([9, 1] * 5), _docs([6] * 10)]
    assert pick_bias("best", biases, counts, []) == 1.0
    assert within_noise_bias(biases, counts) == -0.5


def test_the_team_median_counts_each_team_once_whatever_its_size():
    # documents 0-5 are one large team that wants -0.5; documents 6 and 7 are two small teams that want +0.5
    tp_minus, tp_zero, tp_plus = [7] * 6 + [1, 1], [5] * 8, [4] * 6 + [9, 9]
    counts = [_docs(tp_minus), _docs(tp_zero), _docs(tp_plus)]
    teams = [[0, 1, 2, 3, 4, 5], [6], [7]]
    assert pick_bias("best", BIASES, counts, teams) == -0.5, "pooled, the large team decides"
    assert team_median_bias(BIASES, counts, teams) == 0.5


def test_of_two_middle_team_biases_the_one_nearer_zero_wins_and_teams_without_entities_are_left_out():
    counts = [_docs([6, 1, 0]), _docs([5, 6, 0]), _docs([4, 3, 0])]
    counts = [np.vstack([c[:2], [[0, 3, 0]]]) for c in counts]  # the third team labelled no entity
    assert team_median_bias(BIASES, counts, [[0], [1], [2]]) == 0.0  # bests -0.5 and 0; the empty team is out
    assert team_median_bias(BIASES, counts, [[2]]) == 0.0


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="best, within_noise, team_median"):
        pick_bias("median", BIASES, [_docs([5])] * 3, [])


def test_documents_are_grouped_by_their_team_in_first_seen_order():
    def s(sid: str, doc: str, team: str) -> Sentence:
        return Sentence(sid, ["x"], ["O"], doc, source=f"{team}@{'0' * 40}:train.conll")

    gold = [s("1", "d1", "bob/b"), s("2", "d1", "bob/b"), s("3", "d2", "alice/a"), s("4", "d3", "bob/b")]
    assert document_teams(gold) == [[1], [0, 2]]


def test_calibration_records_the_rule_it_picked_with(tiny_model_dir, seed_dev):
    predictor = Predictor.from_model_dir(tiny_model_dir, Settings(intra_op_threads=1))
    logits = predictor.record_logits(seed_dev)
    grid = bias_grid(-1.0, 1.0, 0.5)
    best = fit_o_bias(predictor, logits, seed_dev, grid)
    noise = fit_o_bias(predictor, logits, seed_dev, grid, rule="within_noise")
    assert best.as_metadata()["calibration"]["rule"] == "best"
    assert noise.as_metadata()["calibration"]["rule"] == "within_noise"
    assert abs(noise.o_bias) <= abs(best.o_bias) and noise.points == best.points
    assert read_metadata(tiny_model_dir).decoding["calibration"]["rule"] == "best", "training stores its rule"


# --- the bench ---------------------------------------------------------------------------------
def test_cross_fitting_decodes_each_half_with_the_bias_picked_on_the_other():
    # even documents want -0.5, odd ones +0.5
    documents = ["d0", "d1", "d2", "d3", "d5", "d4"]  # rows as first seen; halves by sorted id, as quality.py's
    grid = GridCounts(
        BIASES, [_docs([8, 2, 8, 2, 2, 8]), _docs([5] * 6), _docs([2, 8, 2, 8, 8, 2])], [[*range(6)]], documents
    )
    halves = document_halves(documents)
    assert halves == [[0, 2, 5], [1, 3, 4]]
    counts, biases = crossfitted(grid, "best", halves)
    assert biases == [0.5, -0.5], "the even half takes the odd half's bias, and the other way round"
    assert counts[:, 0].tolist() == [2, 2, 2, 2, 2, 2]
    assert grid.pick("none") == 0.0 and grid.pick("best", [0, 2, 4]) == -0.5
