"""bench/reproduce: the gold document pick and the generated part of docs/results.md (pure parts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.reproduce import (
    CHECKPOINT,
    REGIMES,
    control_epochs,
    pick_documents,
    pick_ids,
    resumable_rows,
    run_config,
    save_checkpoint,
)
from bench.reproduce_report import BEGIN, END, best_gain, regime_table, write_report


def _gold_file(tmp_path: Path) -> Path:
    lines = [
        {"id": f"d{d}-{i}", "doc_id": f"d{d}", "tokens": ["x"], "tags": ["O"]} for d in range(6) for i in range(d + 1)
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_documents_are_picked_whole_and_reproducibly(tmp_path):
    path = _gold_file(tmp_path)
    lines, ids = pick_documents(path, 3, seed=13)
    assert len(ids) == 3 and pick_documents(path, 3, seed=13) == (lines, ids)
    docs = [json.loads(x)["doc_id"] for x in lines]
    assert sorted(set(docs)) == ids
    for d in ids:  # every sentence of a picked document, none of the others
        assert docs.count(d) == int(d[1:]) + 1
    assert len(pick_documents(path, None, seed=13)[1]) == 6
    every_id = [json.loads(x)["doc_id"] for x in path.read_text().splitlines()]  # one id per sentence
    assert pick_ids(every_id, 3, seed=13) == ids, "the pick from ids alone (bench/quality.py's) is the same"
    assert REGIMES["docs35"].documents == 35 and REGIMES["all"].documents is None


def _row(iteration, decision, f1):
    return {
        "iteration": iteration,
        "version": str(iteration + 1),
        "decision": decision,
        "reason": f"r{iteration}",
        "micro_f1": f1,
        "macro_f1": f1 - 0.05,
        "token_accuracy": 0.95,
        "per_class": {"MethodName": f1 + 0.1, "TaskName": f1 - 0.2},
        "gold_sentences": 100,
        "auto_sentences": 0 if iteration == 0 else 40,
        "auto_sentences_with_entities": 20,
        "seconds": 90.0,
    }


def test_the_gain_counts_only_promoted_iterations():
    rows = [_row(0, "promoted", 0.40), _row(1, "promoted", 0.42), _row(2, "rejected", 0.45), _row(3, "promoted", 0.43)]
    best, gain = best_gain(rows)
    assert best["iteration"] == 3 and round(gain, 6) == 3.0  # the rejected 0.45 does not count
    assert best_gain([_row(0, "promoted", 0.4), _row(1, "rejected", 0.5)]) == (None, None)


def test_a_run_without_promotions_names_its_best_rejected_candidate():
    rows = [_row(0, "promoted", 0.50), _row(1, "rejected", 0.518), _row(2, "rejected", 0.505)]
    text = regime_table({"iterations": rows})
    assert "**No round was promoted; the best candidate, iteration 1 (v2), was +1.8 micro-F1 points" in text


def _result(iterations: list[dict], **overrides: object) -> dict:
    """A reproduce-docs35.json result as bench/reproduce.py writes it."""
    return {
        "regime": "docs35",
        "description": "35 documents",
        "documents": 35,
        "gold_train_sentences": 100,
        "seed": 13,
        "epochs": 3,
        "papers_per_round": 10,
        "rounds": 2,
        "dev": "dev.jsonl",
        "registry": "sqlite:///x.db",
        "wall_seconds": 600,
        "machine": "test",
        "finished_at": "now",
        "iterations": iterations,
        **overrides,
    }


def test_report_rewrites_only_the_generated_block(tmp_path):
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    docs.mkdir()
    before = f"# Results\n\nhand-written intro\n\n{BEGIN}\nold table\n{END}\n\n## Reading\nkept\n"
    (docs / "results.md").write_text(before)
    payload = _result(
        [_row(0, "promoted", 0.40), _row(1, "promoted", 0.43), _row(2, "rejected", 0.41)],
        dev="shared/data/sciner/dev.jsonl",
    )
    (results / "reproduce-docs35.json").write_text(json.dumps(payload))
    write_report(results, docs)
    text = (docs / "results.md").read_text()
    assert "hand-written intro" in text and "## Reading\nkept" in text and "old table" not in text
    assert "| 1 | v2 | promoted | 43.0 |" in text
    assert "+3.0 micro-F1 points over iteration 0" in text
    assert (docs / "img" / "reproduce_f1.png").stat().st_size > 10_000


def test_the_control_trains_gold_only_for_as_many_steps_as_a_round(tmp_path):
    rows = [_row(0, "promoted", 0.40), _row(1, "promoted", 0.43), _row(2, "promoted", 0.44)]
    result = {"gold_train_sentences": 100, "epochs": 3, "iterations": rows}  # rounds: 100 gold + 40 auto
    assert control_epochs(result) == 4  # 3 epochs x 140 / 100 sentences = 4.2
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    payload = _result(rows, control={**_row(0, "rejected", 0.42), "version": "9", "epochs": 4})
    (results / "reproduce-docs35.json").write_text(json.dumps(payload))
    write_report(results, docs)
    text = (docs / "results.md").read_text()
    assert "**Control** (gold only, 4 epochs" in text and "v9, not promoted): micro-F1 42.0" in text
    assert "+2.0 points over iteration 0; the best promoted iteration (2) is +2.0 points above it" in text


def test_both_regimes_pick_gold_outside_the_gates_evaluation_split(tmp_path):
    from bench.reproduce import carve_eval
    from bench.reproduce_report import evaluated_on

    lines = [
        {"id": f"d{d}-{i}", "doc_id": f"d{d}", "tokens": ["x"], "tags": ["O"]} for d in range(40) for i in range(3)
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(x) + "\n" for x in lines))
    split = carve_eval(train, tmp_path)
    assert split == carve_eval(train, tmp_path)  # the same split for every regime and run
    _, pool_docs = pick_documents(tmp_path / "gold_pool.jsonl", None, seed=13)
    assert set(split["document_ids"]) and not set(split["document_ids"]) & set(pool_docs)
    assert len(pool_docs) + len(split["document_ids"]) == 40
    text = evaluated_on({"dev": "dev.jsonl", "eval_split": split})
    assert f"the gate's evaluation split ({split['eval_split_documents']} gold train documents" in text
    assert evaluated_on({"dev": "dev.jsonl"}) == "`dev.jsonl`"  # results of the earlier gate


def _args(**over):
    import argparse

    base = {
        "epochs": None,
        "seed": 13,
        "seed_f1_sd": None,
        "train": Path("t.jsonl"),
        "dev": Path("d.jsonl"),
        "papers": Path("p.jsonl"),
    }
    return argparse.Namespace(**{**base, **over})


def test_a_resumed_run_keeps_the_finished_iterations_of_its_checkpoint(tmp_path):
    config = run_config(REGIMES["docs35"], _args())
    rows = [_row(0, "promoted", 0.50), _row(1, "rejected", 0.51)]
    save_checkpoint(tmp_path, config, rows, 1234.5)
    checkpoint = json.loads((tmp_path / CHECKPOINT).read_text())
    assert resumable_rows(checkpoint, config) == rows and checkpoint["elapsed_seconds"] == 1234.5
    assert resumable_rows(None, config) == []


def test_resuming_with_other_settings_is_refused_naming_what_changed(tmp_path):
    save_checkpoint(tmp_path, run_config(REGIMES["docs35"], _args()), [_row(0, "promoted", 0.5)], 10)
    checkpoint = json.loads((tmp_path / CHECKPOINT).read_text())
    with pytest.raises(SystemExit, match="epochs: 3 then, 5 now"):
        resumable_rows(checkpoint, run_config(REGIMES["docs35"], _args(epochs=5)))
