import pytest

from sciner.metrics import ERROR_KINDS, confusion_counts, entity_errors, error_markdown, evaluate_tags


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


def test_entity_errors_name_what_became_of_each_gold_entity():
    gold = [
        ["B-Task", "I-Task", "O", "B-Data", "O", "B-Metric", "I-Metric", "O", "B-Method", "O"],
        ["B-Data", "O", "O", "B-Method", "I-Method", "O"],
    ]
    pred = [
        # Task exact; Data as Method on its exact span; Metric cut short; Method missed; a spurious Task at the end
        ["B-Task", "I-Task", "O", "B-Method", "O", "B-Metric", "O", "O", "O", "B-Task"],
        # Data missed; Method overlapped only by a longer Task span
        ["O", "O", "B-Task", "I-Task", "O", "O"],
    ]
    c = entity_errors(gold, pred)
    assert c["Task"]["exact"] == 1 and c["Task"]["spurious"] == 1
    assert c["Data"]["type"] == 1 and c["Data"]["missed"] == 1
    assert c["Metric"]["boundary"] == 1
    assert c["Method"]["missed"] == 1 and c["Method"]["boundary_type"] == 1
    # the wrongly typed predictions overlap a gold entity, so they are not spurious
    assert c["Method"]["spurious"] == 0 and c["Task"]["spurious"] == 1


def test_entity_errors_exact_are_the_strict_metrics_true_positives():
    gold = [["B-A", "I-A", "O", "I-B", "B-A"], ["O", "B-B", "I-B", "I-B"]]
    pred = [["B-A", "I-A", "O", "B-B", "B-A"], ["O", "B-B", "I-B", "O"]]
    c = entity_errors(gold, pred)
    ev = evaluate_tags(gold, pred)
    exact = sum(row["exact"] for row in c.values())
    gold_side = sum(row[k] for row in c.values() for k in ERROR_KINDS if k != "spurious")
    assert gold_side == ev.gold_entities == 4
    assert exact == round(ev.micro_recall * ev.gold_entities) == 3  # the stray I-B counts as an entity, as seqeval's


def test_error_markdown_shows_shares_of_gold_entities():
    md = error_markdown(entity_errors([["B-A", "O", "B-A"]], [["B-A", "O", "O"]]))
    assert "| A | 2 | 1 (50%) | 0 (0%) | 0 (0%) | 0 (0%) | 1 (50%) | 0 |" in md
    assert "| **all** | 2 |" in md
