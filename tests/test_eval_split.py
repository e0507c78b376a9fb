"""The gate's evaluation split: carved from gold train by document, never trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sciner.records import Sentence
from sciner.settings import Settings
from tests.conftest import SEED_DEV, SEED_TRAIN
from training.eval_split import carve, document_of, eval_documents, from_file
from training.gold import GoldError, load_gold


def _doc(d: int, n: int = 3) -> list[Sentence]:
    return [
        Sentence(f"d{d}#s{i}", [f"w{d}", f"x{i}", "."], ["B-MethodName", "O", "O"], doc_id=f"d{d}") for i in range(n)
    ]


def _write(path: Path, sentences: list[Sentence]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": s.id, "doc_id": s.doc_id, "tokens": s.tokens, "tags": s.tags}) + "\n" for s in sentences
        )
    )
    return path


def test_the_split_never_overlaps_training_by_document():
    train = [s for d in range(60) for s in _doc(d)]
    split = carve(train, 0.15, "salt")
    train_docs = {document_of(s) for s in split.train}
    eval_docs = {document_of(s) for s in split.eval}
    assert train_docs and eval_docs and not train_docs & eval_docs
    assert train_docs | eval_docs == {f"d{d}" for d in range(60)}
    assert set(split.documents) == eval_docs and 3 <= len(eval_docs) <= 18  # ~15% of 60
    assert all(len([s for s in split.eval if s.doc_id == d]) == 3 for d in eval_docs)  # whole documents


def test_the_split_is_deterministic_and_a_document_never_changes_side():
    ids = [f"paper-{i}" for i in range(200)]
    first = eval_documents(ids, 0.15, "salt")
    assert first == eval_documents(reversed(ids), 0.15, "salt")
    grown = eval_documents(ids + [f"new-{i}" for i in range(100)], 0.15, "salt")
    assert first <= grown and not (grown - first) & set(ids)  # old documents stay where they were
    assert eval_documents(ids, 0.15, "other salt") != first
    assert eval_documents(["only"], 0.15, "s") == {"only"}  # at least one ...
    assert len(eval_documents(["a", "b"], 0.99, "s")) == 1  # ... and never all


def test_the_split_hash_and_source_are_recorded():
    train = [s for d in range(30) for s in _doc(d)]
    a, b = carve(train, 0.15, "salt"), carve(list(train), 0.15, "salt")
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    assert a.tags == {
        "eval_split": "carved:0.15:salt",
        "eval_split_sha256": a.sha256,
        "eval_split_documents": str(len(a.documents)),
    }


def test_a_given_eval_file_takes_its_documents_and_sentences_out_of_training():
    train = [s for d in range(5) for s in _doc(d)]
    stray = Sentence("other#1", list(_doc(4)[0].tokens), ["O", "O", "O"], doc_id="other")
    split = from_file([*train, stray], _doc(4), "eval.jsonl")
    assert {s.doc_id for s in split.train} == {"d0", "d1", "d2", "d3"}  # d4 and the copy of its sentence left
    assert split.tags["eval_split"] == "file:eval.jsonl"


def test_load_gold_carves_the_seed_set_and_keeps_additions_out_of_the_split(tmp_path):
    home = tmp_path / "home"
    settings = Settings(home=home, gold_train_path=SEED_TRAIN, gold_dev_path=SEED_DEV)
    gold = load_gold(settings)
    eval_docs = {document_of(s) for s in gold.eval}
    assert eval_docs and not eval_docs & {document_of(s) for s in gold.train_all}
    assert not {tuple(s.tokens) for s in gold.eval} & {tuple(s.tokens) for s in gold.train_all + gold.dev}
    assert gold.hashes["eval"] == gold.split.sha256 and gold.split_tags["eval_split"].startswith("carved:0.15:")
    # a human-corrected sentence from an evaluation document does not enter training
    (home / "gold").mkdir(parents=True)
    leaked = next(s for s in gold.eval)
    _write(
        home / "gold" / "additions.jsonl",
        [leaked, Sentence("new#1", ["BERT", "."], ["B-MethodName", "O"], doc_id="new")],
    )
    again = load_gold(settings)
    assert [s.id for s in again.additions] == ["new#1"] and again.split.sha256 == gold.split.sha256


def test_load_gold_with_an_eval_file(tmp_path):
    train = _write(tmp_path / "train.jsonl", [s for d in range(6) for s in _doc(d)])
    dev = _write(tmp_path / "dev.jsonl", _doc(10))
    held = _write(tmp_path / "eval.jsonl", _doc(2) + _doc(20))
    gold = load_gold(Settings(home=tmp_path, gold_train_path=train, gold_dev_path=dev, gold_eval_path=held))
    assert {s.doc_id for s in gold.train} == {"d0", "d1", "d3", "d4", "d5"}
    assert {s.doc_id for s in gold.eval} == {"d2", "d20"} and gold.split_tags["eval_split"] == f"file:{held}"
    with pytest.raises(GoldError, match="must not be empty"):
        load_gold(Settings(home=tmp_path, gold_train_path=held, gold_dev_path=dev, gold_eval_path=held))
