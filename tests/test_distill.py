"""Distillation: the loss against a hand computation, the teacher's soft labels stored once with their
hash, and a real student trained on gold + teacher-labelled abstracts."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sciner.model_dir import read_metadata
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings
from training.distill import (
    SoftTargets,
    average_soft_targets,
    distillation_loss,
    load_soft_targets,
    merge_soft_targets,
    paper_blocks,
    round_soft_targets,
    save_soft_targets,
    soft_targets_for,
    soft_targets_for_parts,
    teacher_dirs,
    unlabeled_sentences,
)


def _log_softmax(row: list[float], t: float = 1.0) -> list[float]:
    scaled = [x / t for x in row]
    top = max(scaled)
    norm = top + math.log(sum(math.exp(x - top) for x in scaled))
    return [x - norm for x in scaled]


def test_the_loss_on_a_toy_batch_equals_a_hand_computation():
    logits = [[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], [[-0.5, 1.5, 0.0], [1.0, 1.0, 1.0]]]
    labels = [[0, -100], [1, -100]]
    soft = [[[0.0, 0.0, 0.0], [0.2, 0.5, 0.3]], [[0.6, 0.3, 0.1], [0.0, 0.0, 0.0]]]
    soft_mask = [[False, True], [True, False]]
    alpha, t = 0.3, 2.0

    ce = -(_log_softmax(logits[0][0])[0] + _log_softmax(logits[1][0])[1]) / 2
    kls = []
    for b, i in ((0, 1), (1, 0)):
        log_q = _log_softmax(logits[b][i], t)
        kls.append(sum(p * (math.log(p) - lq) for p, lq in zip(soft[b][i], log_q, strict=True)))
    expected = alpha * ce + (1 - alpha) * t * t * sum(kls) / 2

    got = distillation_loss(
        torch.tensor(logits), torch.tensor(labels), torch.tensor(soft), torch.tensor(soft_mask), alpha, t
    )
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_a_batch_without_gold_labels_is_pure_distillation_and_without_soft_labels_pure_ce():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    soft = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]])
    none = torch.full((1, 2), -100)
    kd = distillation_loss(logits, none, soft, torch.tensor([[True, True]]), 0.5, 1.0)
    assert float(kd) > 0
    ce = distillation_loss(logits, torch.tensor([[0, 1]]), soft, torch.tensor([[False, False]]), 0.5, 1.0)
    assert float(ce) == pytest.approx(0.5 * float(torch.nn.functional.cross_entropy(logits[0], torch.tensor([0, 1]))))


def test_soft_targets_round_trip_with_their_hash(tmp_path):
    rows = {"a": np.full((2, 3), 1 / 3, np.float32), "b": np.eye(3, dtype=np.float32)}
    targets = SoftTargets(["O", "B-X", "I-X"], rows)
    digest = save_soft_targets(tmp_path / "t.npz", targets, {"temperature": 2.0})
    back = load_soft_targets(tmp_path / "t.npz")
    assert back.sha256 == digest and len(digest) == 64 and back.labels == targets.labels
    assert np.array_equal(back.by_id["b"], targets.by_id["b"]) and back.by_id["a"].shape == (2, 3)
    assert json.loads((tmp_path / "t.json").read_text())["sentences"] == 2


def test_soft_targets_that_fail_to_save_leave_neither_a_staging_file_nor_a_cache_entry(tmp_path, monkeypatch):
    def disk_full(path, **arrays):
        Path(path).write_bytes(b"half an npz")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    targets = SoftTargets(["O", "B-X", "I-X"], {"a": np.eye(3, dtype=np.float32)})

    with pytest.raises(OSError, match="No space"):
        save_soft_targets(tmp_path / "t.npz", targets, {})
    assert list(tmp_path.iterdir()) == []


def test_merged_soft_targets_keep_every_sentence_and_hash_the_parts_hashes_in_order():
    labels = ["O", "B-X", "I-X"]
    gold = SoftTargets(labels, {"g1": np.eye(3, dtype=np.float32)}, "a" * 64, "teacher")
    auto = SoftTargets(labels, {"p:0": np.full((1, 3), 1 / 3, np.float32)}, "b" * 64, "teacher")
    merged = merge_soft_targets([gold, auto])
    assert sorted(merged.by_id) == ["g1", "p:0"] and merged.labels == labels and merged.teacher == "teacher"
    assert merged.sha256 == hashlib.sha256(("a" * 64 + "\n" + "b" * 64).encode()).hexdigest()
    assert merge_soft_targets([auto, gold]).sha256 != merged.sha256
    assert merge_soft_targets([gold]) is gold


def test_soft_targets_over_other_labels_or_the_same_sentence_twice_do_not_merge():
    one = SoftTargets(["O", "B-X", "I-X"], {"s": np.eye(3, dtype=np.float32)}, "a" * 64)
    with pytest.raises(ValueError, match="different labels"):
        merge_soft_targets([one, SoftTargets(["O", "B-Y", "I-Y"], {"t": np.eye(3, dtype=np.float32)}, "b" * 64)])
    with pytest.raises(ValueError, match=r"overlap on 1 sentence ids, e\.g\. 's'"):
        merge_soft_targets([one, SoftTargets(one.labels, {"s": np.eye(3, dtype=np.float32)}, "b" * 64)])


def test_two_teachers_distributions_are_averaged_per_word_and_named_together():
    labels = ["O", "B-X", "I-X"]
    teacher = SoftTargets(labels, {"s": np.array([[1.0, 0.0, 0.0], [0.2, 0.8, 0.0]], np.float32)}, "a" * 64, "mpnet")
    student = SoftTargets(labels, {"s": np.array([[0.6, 0.4, 0.0], [0.0, 0.6, 0.4]], np.float32)}, "b" * 64, "minilm")
    both = average_soft_targets([teacher, student])
    assert np.allclose(both.by_id["s"], [[0.8, 0.2, 0.0], [0.1, 0.7, 0.2]])
    assert both.teacher == "mpnet + minilm" and teacher_dirs(both) == ["mpnet", "minilm"] == [
        *teacher_dirs(teacher),
        *teacher_dirs(student),
    ]  # each teacher's folder, whose record of the evaluation split the student keeps
    assert both.sha256 == hashlib.sha256(("a" * 64 + "\n" + "b" * 64).encode()).hexdigest()
    assert average_soft_targets([teacher]) is teacher


def test_teachers_over_other_sentences_or_labels_are_not_averaged():
    one = SoftTargets(["O", "B-X", "I-X"], {"s": np.eye(3, dtype=np.float32)}, "a" * 64)
    with pytest.raises(ValueError, match="different sentences"):
        average_soft_targets([one, SoftTargets(one.labels, {"t": np.eye(3, dtype=np.float32)}, "b" * 64)])
    with pytest.raises(ValueError, match="different labels"):
        average_soft_targets([one, SoftTargets(["O", "B-Y", "I-Y"], {"s": np.eye(3, dtype=np.float32)}, "b" * 64)])


def test_each_part_is_labelled_and_cached_on_its_own(tiny_model_dir, seed_dev, tmp_path):
    """A round's gold part keeps its cache file while its auto-annotated part changes."""
    labels = read_metadata(tiny_model_dir).labels
    settings = Settings(home=tmp_path, intra_op_threads=1)
    gold, auto = seed_dev[:3], seed_dev[3:5]
    first = soft_targets_for_parts(tiny_model_dir, [gold, auto, []], labels, settings)
    assert sorted(first.by_id) == sorted(s.id for s in [*gold, *auto])
    gold_file = next(p for p in (tmp_path / "distill").glob("*.json") if json.loads(p.read_text())["sentences"] == 3)
    stamp = gold_file.stat().st_mtime_ns
    second = soft_targets_for_parts(tiny_model_dir, [gold, seed_dev[5:6]], labels, settings)
    assert gold_file.stat().st_mtime_ns == stamp  # read from the cache, not labelled again
    assert len(list((tmp_path / "distill").glob("*.npz"))) == 3 and second.sha256 != first.sha256


def test_a_round_removes_the_soft_targets_earlier_rounds_cached_and_it_does_not_reuse(
    tiny_model_dir, seed_dev, tmp_path
):
    """The gold part a round reuses stays; an earlier round's auto-annotated part goes; a ``sciner distill``
    file (no owner) is never touched."""
    labels = read_metadata(tiny_model_dir).labels
    settings = Settings(home=tmp_path, intra_op_threads=1)
    cache = tmp_path / "distill"

    def sizes() -> dict[int, str]:  # sentences -> owner of each cached file
        metas = [json.loads(p.read_text()) for p in cache.glob("*.json")]
        return {m["sentences"]: m.get("owner", "") for m in metas}

    gold, first_auto, second_auto, cli_part = seed_dev[:3], seed_dev[3:5], seed_dev[5:6], seed_dev[6:10]
    soft_targets_for(tiny_model_dir, cli_part, labels, settings)
    round_soft_targets(tiny_model_dir, [gold, first_auto], labels, settings)
    assert sizes() == {4: "", 3: "round", 2: "round"}
    gold_file = next(p for p in cache.glob("*.npz") if json.loads(p.with_suffix(".json").read_text())["sentences"] == 3)
    stamp = gold_file.stat().st_mtime_ns

    second = round_soft_targets(tiny_model_dir, [gold, second_auto], labels, settings)

    assert sorted(second.by_id) == sorted(s.id for s in [*gold, *second_auto])
    assert sizes() == {4: "", 3: "round", 1: "round"}  # the first round's auto part is gone
    assert gold_file.stat().st_mtime_ns == stamp  # reused, not labelled again
    assert len(list(cache.glob("*.npz"))) == 3


def _sentences_of(papers: list[tuple[str, int]]) -> list[Sentence]:
    return [Sentence(f"{p}:{k}", ["word"], None, p) for p, n in papers for k in range(n)]


def test_abstracts_come_in_blocks_of_whole_papers_whose_first_blocks_never_change():
    sentences = _sentences_of([("a", 2), ("b", 1), ("c", 3), ("d", 1), ("e", 2)])
    blocks = paper_blocks(sentences, 2)
    assert [[s.id for s in block] for block in blocks] == [
        ["a:0", "a:1", "b:0"],
        ["c:0", "c:1", "c:2", "d:0"],
        ["e:0", "e:1"],
    ]
    assert paper_blocks(sentences[:6], 2)[:1] == blocks[:1]  # a shorter prefix: the same first block
    assert paper_blocks([], 2) == []
    with pytest.raises(ValueError, match="at least 1"):
        paper_blocks(sentences, 0)


def test_more_abstracts_reuse_the_blocks_labelled_before(tiny_model_dir, tmp_path):
    """Labelling is the expensive step (~40 min for 1,500 abstracts on 2 cores with the MPNet teacher)."""
    labels = read_metadata(tiny_model_dir).labels
    settings = Settings(home=tmp_path, intra_op_threads=1)
    papers = tmp_path / "papers.jsonl"
    papers.write_text(
        "\n".join(
            json.dumps({"paper_id": f"p{i}", "title": f"Study {i}", "abstract": "We train BERT on SQuAD."})
            for i in range(3)
        ),
        encoding="utf-8",
    )
    two = soft_targets_for_parts(tiny_model_dir, paper_blocks(unlabeled_sentences(papers, 2), 2), labels, settings)
    (first_block,) = (tmp_path / "distill").glob("*.npz")
    stamp = first_block.stat().st_mtime_ns
    three = soft_targets_for_parts(tiny_model_dir, paper_blocks(unlabeled_sentences(papers), 2), labels, settings)
    assert first_block.stat().st_mtime_ns == stamp  # read back, not labelled again
    assert len(list((tmp_path / "distill").glob("*.npz"))) == 2
    assert set(two.by_id) < set(three.by_id) and two.sha256 != three.sha256


def test_the_teacher_labels_in_fp32_by_default_and_each_engine_keeps_its_own_labels(tiny_model_dir, seed_dev, tmp_path):
    """Int8 costs the MPNet teacher 2.4 F1 points (docs/quality.md): distillation labels in fp32 unless told."""
    labels = read_metadata(tiny_model_dir).labels
    few = seed_dev[:4]
    for variant in (None, "int8"):
        extra = {"distill_teacher_variant": variant} if variant else {}
        soft_targets_for(tiny_model_dir, few, labels, Settings(home=tmp_path, intra_op_threads=1, **extra))
    engines = sorted(json.loads(p.read_text())["engine"] for p in (tmp_path / "distill").glob("*.json"))
    assert engines == ["onnxruntime:fp32", "onnxruntime:int8"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_student_learns_from_gold_and_teacher_labelled_abstracts(tiny_model_dir, seed_train, seed_dev, tmp_path):
    from training.pipeline import train_and_export

    papers = tmp_path / "papers.jsonl"
    papers.write_text(
        "\n".join(
            json.dumps({"paper_id": f"p{i}", "title": "A study", "abstract": s})
            for i, s in enumerate(
                [
                    "We train BERT on SQuAD with a learning rate of 3e-5 and reach 91.2 F1.",
                    "Our CRF tagger improves named entity recognition on CoNLL-2003.",
                ]
            )
        ),
        encoding="utf-8",
    )
    extra = unlabeled_sentences(papers)
    assert extra and all(s.tags is None for s in extra)
    settings = Settings(home=tmp_path, epochs=1, batch_size=8, learning_rate=2e-4, intra_op_threads=1)
    labels = read_metadata(tiny_model_dir).labels
    targets = soft_targets_for(tiny_model_dir, [*seed_train, *extra], labels, settings)
    assert len(targets) == len(seed_train) + len(extra) and len(targets.sha256) == 64
    again = soft_targets_for(tiny_model_dir, [*seed_train, *extra], labels, settings)
    assert again.sha256 == targets.sha256, "the teacher labels a corpus once; the next call reads the file"

    out = tmp_path / "student"
    summary = train_and_export([*seed_train, *extra], seed_dev, out, settings, progress=False, soft_targets=targets)
    meta = read_metadata(out)
    assert meta.training["distillation"]["soft_targets_sha256"] == targets.sha256
    assert meta.data["soft_targets"]["sentences"] == len(targets)
    assert np.isfinite(meta.training["history"][0]["loss"]) and "micro_f1" in summary["dev"]
    (result,) = Predictor.from_model_dir(out, settings).predict_texts(["We train BERT on SQuAD ."])
    assert result.sentences == 1
