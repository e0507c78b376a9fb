"""bench/ensemble_distill.py: teachers trained side by side, each labelling once, and one student learning their
average, with a lineage that names every teacher."""

from __future__ import annotations

import json

import pytest

from bench.ensemble_distill import main
from sciner.model_dir import read_metadata
from tests.conftest import SEED_DEV, SEED_TRAIN

ABSTRACTS = [
    {"paper_id": "p1", "title": "BERT for NER", "abstract": "We fine-tune BERT on CoNLL-2003. It reaches 92.4 F1."},
    {"paper_id": "p2", "title": "Parsing", "abstract": "We train a parser on the Penn Treebank with Adam."},
]


@pytest.mark.slow
def test_teachers_side_by_side_label_once_and_one_student_learns_their_average(seed_train, tmp_path, sciner_env):
    papers = tmp_path / "papers.jsonl"
    papers.write_text("".join(json.dumps(p) + "\n" for p in ABSTRACTS))
    home, out = tmp_path / "home", tmp_path / "ensemble"
    sciner_env(HOME=home, DEVICE="cpu", BATCH_SIZE=8, LEARNING_RATE=2e-4)
    main(
        [
            *("--train", str(SEED_TRAIN), "--dev", str(SEED_DEV), "--papers", str(papers)),
            *("--unlabeled-papers", "2", "--teachers", "2", "--teacher-epochs", "1", "--student-epochs", "1"),
            *("--torch-threads", "1", "--out", str(out)),
        ]
    )

    run = json.loads((out / "run.json").read_text())
    assert [t["seed"] for t in run["teachers"]] == [43, 44]
    training = read_metadata(out / "student").training
    assert training["distillation"]["teacher"] == f"{out / 'teacher-s43'} + {out / 'teacher-s44'}"
    abstract_sentences = run["student"]["unlabeled_sentences"]
    assert abstract_sentences >= 2
    assert training["train_sentences"] == len(seed_train) + abstract_sentences
    # each teacher labelled gold train and the block of abstracts once; the student read those four files
    assert len(list((home / "distill").glob("*.npz"))) == 4
    assert not (out / "student" / "onnx").exists()  # scored where it is served: bench/quality.py --rescore
    assert 0.0 <= run["teachers_ensemble_dev"]["micro_f1"] <= 1.0


def test_an_ensemble_reads_as_the_log_of_its_members_mean_probabilities():
    import numpy as np

    from bench.ensemble_distill import averaged_word_logits
    from sciner.decoding import softmax
    from sciner.predictor import WordLogits

    sure_o = WordLogits(np.array([[4.0, 0.0, 0.0], [0.0, 0.0, 4.0]]), 1)
    sure_b = WordLogits(np.array([[0.0, 4.0, 0.0], [0.0, 0.0, 4.0]]), 1)

    (averaged,) = averaged_word_logits([[sure_o], [sure_b]])

    expected = (softmax(sure_o.logits) + softmax(sure_b.logits)) / 2
    assert np.allclose(softmax(averaged.logits), expected)
    assert averaged.logits[1].argmax() == 2 and averaged.windows == 1


def test_a_teacher_that_fails_fails_the_run_and_names_its_log(tmp_path, sciner_env):
    sciner_env(HOME=tmp_path / "home")
    out = tmp_path / "ensemble"
    with pytest.raises(SystemExit, match="teachers of seeds \\[43, 44\\] failed") as failure:
        main(
            [
                *("--train", str(tmp_path / "missing.jsonl"), "--dev", str(SEED_DEV)),
                *("--unlabeled-papers", "0", "--teachers", "2", "--out", str(out)),
            ]
        )

    assert str(out / "teacher-s43.log") in str(failure.value)
    assert "missing.jsonl" in (out / "teacher-s43.log").read_text()
    assert not (out / "run.json").exists()
