import pytest

from sciner.metrics import confusion_counts, evaluate_tags


def test_strict_matching_needs_exact_boundaries_and_type():
    gold = [["B-Task", "I-Task", "O", "B-Data"]]
    pred = [["B-Task", "O", "O", "B-Data"]]
    ev = evaluate_tags(gold, pred)
    assert ev.per_class["Data"].f1 == 1.0
    assert ev.per_class["Task"].f1 == 0.0
    assert ev.micro_f1 == pytest.approx(0.5)
    assert ev.macro_f1 == pytest.approx(0.5)
    assert ev.token_accuracy == pytest.approx(0.75)


def test_classes_absent_everywhere_are_reported_with_zero():
    ev = evaluate_tags([["O"]], [["O"]], classes=["MetricValue"])
    assert ev.per_class["MetricValue"].f1 == 0.0 and ev.micro_f1 == 0.0


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="sentence 0"):
        evaluate_tags([["O", "O"]], [["O"]])


def test_flat_metrics_name_each_class():
    ev = evaluate_tags([["B-X"]], [["B-X"]])
    flat = ev.as_flat_metrics("gold_")
    assert flat["gold_micro_f1"] == 1.0 and flat["gold_f1_X"] == 1.0
    assert "| X |" in ev.table()


def test_confusion_counts_by_word():
    c = confusion_counts([["B-A", "O"]], [["B-B", "O"]])
    assert c["A"]["B"] == 1 and c["O"]["O"] == 1
