"""Self-training loop, pure parts: thresholds, masking, promotion gate, bootstrap CI, paper store,
ingestion, lock, heartbeat, gold additions. No servers, no training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from sciner.decoding import WordSpan
from sciner.metrics import ClassScores, Evaluation
from sciner.paper_records import content_hash, paper_from_mapping
from sciner.papers import PaperStore, ingest_records
from sciner.records import Sentence
from sciner.settings import Settings
from training.autoannotate import balance_empty, chosen_scores, has_entity, lowest_confidence, mask_prediction
from training.locking import Heartbeat, LockBusy, RoundLock, heartbeat_age
from training.promotion import ModelScores, decide, micro_f1, paired_bootstrap, sentence_counts
from training.thresholds import UNREACHABLE, calibrate_class, calibrate_thresholds

runner = CliRunner()


# --- thresholds ------------------------------------------------------------------------------
def test_threshold_is_the_lowest_score_reaching_the_target_precision():
    scored = [(0.99, True), (0.95, True), (0.9, True), (0.8, False), (0.7, True), (0.6, False), (0.5, False)]
    t = calibrate_class(scored, target_precision=0.75, min_entities=3, default=0.9)
    # >=0.7: 4/5 = 0.8 ok; >=0.6: 4/6 < 0.75 -> lowest passing is 0.7
    assert t.status == "calibrated" and t.threshold == 0.7
    assert t.precision_at_threshold == pytest.approx(0.8) and t.accepted_at_threshold == 5


def test_threshold_ties_enter_together_and_fallbacks():
    tied = [(0.9, True), (0.9, False), (0.8, True)]
    assert calibrate_class(tied, 0.6, 1, 0.5).threshold == 0.8  # 2/3 at 0.8
    assert calibrate_class(tied, 0.7, 1, 0.5).status == "unreachable"  # 1/2 at 0.9, 2/3 at 0.8
    assert calibrate_class(tied, 0.7, 1, 0.5).threshold == UNREACHABLE
    few = calibrate_class([(0.99, True)], 0.9, min_entities=5, default=0.93)
    assert few.status == "default" and few.threshold == 0.93


def test_calibrate_thresholds_matches_exact_spans_and_types():
    gold = [["B-MethodName", "I-MethodName", "O", "B-DatasetName"], ["O", "B-TaskName"]]
    pred = [
        [WordSpan(0, 2, "MethodName", 0.95), WordSpan(3, 4, "TaskName", 0.9)],  # second: wrong type
        [WordSpan(1, 2, "TaskName", 0.8)],
    ]
    th = calibrate_thresholds(gold, pred, ["MethodName", "TaskName", "DatasetName"], 0.5, min_entities=1, default=0.7)
    assert th["MethodName"].threshold == 0.95
    assert th["TaskName"].threshold == 0.8 and th["TaskName"].precision_at_threshold == 0.5
    assert th["DatasetName"].status == "default"


# --- masking ---------------------------------------------------------------------------------
def test_mask_keeps_confident_entities_and_masks_uncertain_tokens():
    tags = ["B-MethodName", "I-MethodName", "O", "O", "B-DatasetName", "O"]
    scores = [0.97, 0.95, 0.99, 0.4, 0.6, 0.95]
    spans = [WordSpan(0, 2, "MethodName", 0.96), WordSpan(4, 5, "DatasetName", 0.6)]
    m = mask_prediction(tags, scores, spans, {"MethodName": 0.9, "DatasetName": 0.8}, o_floor=0.9)
    assert m.tags == ["B-MethodName", "I-MethodName", "O", None, None, "O"]
    assert [s.label for s in m.accepted] == ["MethodName"] and [s.label for s in m.rejected] == ["DatasetName"]


def test_mask_uses_default_threshold_for_unknown_classes():
    m = mask_prediction(["B-X"], [0.5], [WordSpan(0, 1, "X", 0.5)], {}, 0.9, default_threshold=0.4)
    assert m.tags == ["B-X"]


def test_chosen_scores_and_lowest_confidence():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    assert chosen_scores(probs, ["O", "I-A"], ["O", "B-A", "I-A"]).tolist() == [0.7, 0.3]

    class S:
        def __init__(self, c):
            self.confidence = c

    items = [S(0.9), S(0.2), S(0.5), S(0.2)]
    assert [items.index(x) for x in lowest_confidence(items, 3)] == [1, 3, 2]


def test_entity_free_auto_sentences_are_capped_at_ratio_times_those_with_entities():
    def sent(i, tags):
        return Sentence(id=f"p#s{i}", tokens=["w"] * len(tags), tags=tags)

    with_entity = [sent(i, ["B-MethodName", "O"]) for i in range(3)]
    masked_entity_free = [sent(10 + i, ["O", None]) for i in range(4)]
    empty = [sent(20 + i, ["O", "O"]) for i in range(6)]
    pool = [*empty[:3], *with_entity, *masked_entity_free, *empty[3:]]

    kept, dropped = balance_empty(pool, ratio=1.0, seed=7)
    assert sum(has_entity(s) for s in kept) == 3  # every sentence with an entity stays
    assert len(kept) == 6 and dropped == 7  # 3 entity-free sentences for 3 with entities
    assert [s.id for s in kept] == [s.id for s in pool if s in kept]  # input order kept
    assert balance_empty(pool, 1.0, seed=7)[0] == kept  # seeded: the same pick every time
    assert balance_empty(pool, ratio=0.0, seed=7)[0] == with_entity
    assert balance_empty(pool, ratio=10.0, seed=7) == (pool, 0)  # under budget: nothing dropped


# --- promotion gate --------------------------------------------------------------------------
def _scores(micro, per_class, support=10):
    return ModelScores(micro, per_class, dict.fromkeys(per_class, support))


def test_promote_only_when_f1_improves_by_more_than_the_delta():
    champ = _scores(0.50, {"A": 0.5, "B": 0.5})
    better = _scores(0.55, {"A": 0.55, "B": 0.52})
    d = decide(better, champ, rule="delta", min_f1_delta=0.0, max_class_drop=0.05)
    assert d.promote and d.reason.startswith("Promoted:") and d.delta == pytest.approx(0.05)
    assert not decide(better, champ, rule="delta", min_f1_delta=0.05).promote  # "more than", strictly
    same = decide(champ, champ, rule="delta")
    assert not same.promote and "not above" in same.reason
    assert not decide(better, champ, rule="delta", min_f1_delta=1.0).promote


def test_a_class_dropping_too_much_blocks_promotion():
    champ = _scores(0.50, {"A": 0.5, "B": 0.6})
    cand = _scores(0.60, {"A": 0.7, "B": 0.5})
    d = decide(cand, champ, rule="delta", max_class_drop=0.05)
    assert not d.promote and "B F1 dropped by 0.1000" in d.reason
    assert decide(cand, champ, rule="delta", max_class_drop=0.2).promote
    # classes without gold support are ignored
    champ0 = ModelScores(0.5, {"A": 0.5, "Z": 0.9}, {"A": 10, "Z": 0})
    assert decide(_scores(0.6, {"A": 0.6, "Z": 0.0}), champ0, rule="delta").promote


def test_required_bootstrap_ci_must_exclude_zero():
    champ, cand = _scores(0.5, {"A": 0.5}), _scores(0.6, {"A": 0.6})
    from training.promotion import BootstrapCI

    assert not decide(cand, champ, rule="bootstrap", ci=BootstrapCI(0.1, 0.1, -0.01, 0.2, 100)).promote
    ok = decide(cand, champ, rule="bootstrap", ci=BootstrapCI(0.1, 0.1, 0.02, 0.2, 100))
    assert ok.promote and "[+0.0200, +0.2000] (100 resamples)" in ok.reason
    assert not decide(cand, champ, rule="bootstrap", ci=None).promote


def test_sentence_counts_and_micro_f1_agree_with_seqeval():
    from sciner.metrics import evaluate_tags

    gold = [["B-A", "I-A", "O", "B-B"], ["O", "O"], ["B-A", "O"]]
    pred = [["B-A", "I-A", "O", "O"], ["B-B", "O"], ["B-A", "O"]]
    counts = sentence_counts(gold, pred)
    assert counts.tolist() == [[1, 1, 2], [0, 1, 0], [1, 1, 1]]
    assert micro_f1(counts) == pytest.approx(evaluate_tags(gold, pred).micro_f1)


def test_paired_bootstrap_separates_a_real_gain_from_noise():
    rng = np.random.default_rng(1)
    n = 400
    gold_n = rng.integers(1, 4, n)
    champ = np.stack([np.minimum(gold_n, rng.integers(0, 3, n)), gold_n, gold_n], axis=1)
    better = np.stack([gold_n, gold_n, gold_n], axis=1)  # perfect
    ci = paired_bootstrap(better, champ, samples=300, seed=0)
    assert ci.lower > 0 and ci.delta == pytest.approx(micro_f1(better) - micro_f1(champ))
    same = paired_bootstrap(champ, champ, samples=300, seed=0)
    assert same.lower == same.upper == 0.0
    with pytest.raises(ValueError):
        paired_bootstrap(better[:3], champ, samples=10)


def test_model_scores_from_evaluation():
    ev = Evaluation(0.5, 0.5, 0.5, 0.4, 0.9, {"A": ClassScores(0.5, 0.5, 0.45, 7)}, 3, 7)
    s = ModelScores.from_evaluation(ev)
    assert s.micro_f1 == 0.5 and s.per_class_f1 == {"A": 0.45} and s.support == {"A": 7}


# --- paper store and ingestion ---------------------------------------------------------------
@pytest.fixture()
def store(tmp_path):
    s = PaperStore(f"sqlite:///{tmp_path / 'papers.db'}")
    yield s
    s.close()


def test_paper_records_validate_and_hash():
    rec = paper_from_mapping(
        {"paper_id": "P1", "title": "T", "abstract": " Body  text. ", "year": 2020, "venue": "ACL"}
    )
    assert rec.text == "T\n\nBody  text." and rec.content_hash == content_hash("T Body text.")
    assert paper_from_mapping({"text": "Just text."}).paper_id.startswith("sha256:")
    for bad, reason in [
        ([], "not a JSON object"),
        ({"title": "x"}, "needs an 'abstract'"),
        ({"abstract": "  "}, "is empty"),
        ({"abstract": "a", "year": "2020"}, "'year'"),
        ({"abstract": "a", "paper_id": ["x"]}, "'paper_id'"),
    ]:
        with pytest.raises(ValueError, match=reason):
            paper_from_mapping(bad)


def test_ingest_records_dedupes_by_id_and_content_and_keeps_good_records(store):
    report = ingest_records(
        [
            {"paper_id": "A", "abstract": "Alpha text."},
            {"nope": 1},
            {"paper_id": "B", "abstract": "Beta."},
            {"paper_id": "A", "abstract": "Alpha text."},
            {"paper_id": "C", "abstract": "Alpha   text."},
        ],
        store=store,
    )
    assert report.added == 2 and report.paper_ids == ["A", "B"]
    assert [(e.index, e.where) for e in report.errors] == [(1, "record 1")]
    assert [(d.index, d.paper_id) for d in report.duplicates] == [(3, "A"), (4, "C")]
    assert "same content as paper 'A'" in report.duplicates[1].reason
    again = ingest_records([{"paper_id": "A", "abstract": "Other content."}], store=store)
    assert again.added == 0 and "other content" in again.duplicates[0].reason
    assert store.count() == 2 and store.count_unused() == 2


def test_rounds_record_used_papers_only_when_finished(store):
    ingest_records([{"paper_id": f"P{i}", "abstract": f"Paper number {i}."} for i in range(5)], store=store)
    first = store.unused_papers(3)
    assert [p.paper_id for p in first] == ["P0", "P1", "P2"]
    r1 = store.start_round("1")
    # a round that dies before finish_round leaves everything unused; the next start marks it abandoned
    r2 = store.start_round("1")
    assert store.count_unused() == 5
    store.finish_round(
        r2, status="registered", decision="promoted", model_version="2", new_papers=[p.pk for p in first]
    )
    assert store.count_unused() == 2 and [p.paper_id for p in store.unused_papers(10)] == ["P3", "P4"]
    r3 = store.start_round("2")
    store.finish_round(
        r3,
        status="registered",
        decision="rejected",
        model_version="3",
        new_papers=[p.pk for p in store.unused_papers(10)],
        reused_papers=[first[0].pk],
    )
    assert store.paper_rounds("P0") == [r2, r3] and store.paper_rounds("P4") == [r3]
    assert next(p.paper_id for p in store.used_papers(2)) in {"P0", "P3", "P4"}
    rounds = {r.id: r for r in store.rounds()}
    assert rounds[r1].status == "abandoned" and rounds[r2].papers == 3 and rounds[r3].decision == "rejected"


def test_cli_ingest_reports_bad_lines_and_keeps_good_ones(tmp_path, monkeypatch):
    from training.cli import app

    monkeypatch.setenv("SCINER_HOME", str(tmp_path / "home"))
    src = tmp_path / "papers.jsonl"
    src.write_text(
        json.dumps(
            {"paper_id": "2022.acl-long.1", "title": "T", "abstract": "We propose X.", "year": 2022, "venue": "ACL"}
        )
        + "\n"
        + "{broken\n\n"
        + json.dumps({"paper_id": "P2", "abstract": 3})
        + "\n"
        + json.dumps({"paper_id": "P3", "abstract": "Another one."})
        + "\n"
    )
    txt = tmp_path / "notes.txt"
    txt.write_text("A plain text paper. It has two sentences.")
    ls = tmp_path / "tasks.json"
    ls.write_text(json.dumps([{"id": 7, "data": {"text": "Label Studio text."}}, {"data": 1}]))
    result = runner.invoke(app, ["ingest", str(src), str(txt), str(ls), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["added"] == 4 and report["unused"] == 4
    where = {e["where"]: e["reason"] for e in report["errors"]}
    assert where[f"{src}:2"].startswith("invalid JSON") and "must be a string" in where[f"{src}:4"]
    assert "no 'data' object" in where[f"{ls}: task 1"]
    again = runner.invoke(app, ["ingest", str(txt)])
    assert again.exit_code == 0 and "duplicates 1" in again.stdout
    store = PaperStore(Settings(home=tmp_path / "home").paper_store_url)
    assert {p.paper_id for p in store.unused_papers(10)} == {"2022.acl-long.1", "P3", "notes", "ls:7"}
    store.close()


# --- lock and heartbeat ----------------------------------------------------------------------
HOLD = """
import sys, time
from training.locking import RoundLock
lock = RoundLock(sys.argv[1], "test-holder"); lock.acquire()
print("locked", flush=True); time.sleep(60)
"""


def test_lock_is_exclusive_across_processes_and_freed_by_sigkill(tmp_path):
    path = tmp_path / "retrain.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock = RoundLock(path)
        with pytest.raises(LockBusy) as busy:
            lock.acquire(wait=0.3, poll=0.1)
        assert busy.value.holder["pid"] == holder.pid and "test-holder" in str(busy.value)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        lock.acquire(wait=5, poll=0.1)
        assert lock.held and lock.holder()["pid"] == os.getpid()
        lock.release()
        assert not lock.held
    finally:
        holder.kill()
        holder.wait()


def test_heartbeat_and_healthcheck(tmp_path, monkeypatch):
    from training.cli import app

    monkeypatch.setenv("SCINER_HOME", str(tmp_path))
    path = Settings(home=tmp_path).heartbeat_path
    assert runner.invoke(app, ["healthcheck"]).exit_code == 1
    with Heartbeat(path, interval=0.05, state="round"):
        time.sleep(0.2)
        assert heartbeat_age(path) < 1
        assert runner.invoke(app, ["healthcheck"]).exit_code == 0
    info = json.loads(path.read_text())
    info["time"] -= 1000
    path.write_text(json.dumps(info))
    stale = runner.invoke(app, ["healthcheck"])
    assert stale.exit_code == 1 and "unhealthy" in stale.output
    assert runner.invoke(app, ["healthcheck", "--max-age", "5000"]).exit_code == 0


# --- gold additions and review export ---------------------------------------------------------
def test_ingest_gold_appends_and_replaces_corrected_sentences(tmp_path):
    from training.ingest import ingest_gold

    settings = Settings(home=tmp_path)
    ls = tmp_path / "corrected.json"
    task = {
        "data": {"text": "We train GazCRF on CoNLL."},
        "annotations": [{"result": [{"value": {"start": 9, "end": 15, "labels": ["MethodName"]}}]}],
    }
    ls.write_text(json.dumps([task, {"data": {"text": "Not annotated."}}]))
    first = ingest_gold(settings, ls)
    assert (first.added, first.replaced, first.total) == (1, 0, 1)
    task["annotations"][0]["result"].append({"value": {"start": 19, "end": 24, "labels": ["DatasetName"]}})
    ls.write_text(json.dumps([task]))
    second = ingest_gold(settings, ls)
    assert (second.added, second.replaced, second.total) == (0, 1, 1)
    from sciner.io.jsonl import read_jsonl

    (s,) = read_jsonl(settings.gold_additions_path)
    assert s.tags == ["O", "O", "B-MethodName", "O", "B-DatasetName", "O"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tokens": ["a"], "tags": ["B-Nope"]}) + "\n")
    from sciner.io import DataError

    with pytest.raises(DataError, match="unknown entity types"):
        ingest_gold(settings, bad)


def test_a_reused_round_id_starts_from_an_empty_folder(tmp_path):
    from training.round_common import fresh_round_dir, round_dir_of

    settings = Settings(home=tmp_path)
    left = round_dir_of(settings, 7) / "candidate" / "model.onnx"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"half-written by a round that died")

    folder = fresh_round_dir(settings, 7)

    assert folder == tmp_path / "rounds" / "00007" == round_dir_of(settings, 7)
    assert folder.is_dir() and not any(folder.iterdir())


def test_export_review_from_a_round_folder(tmp_path):
    from training.review import export_review

    settings = Settings(home=tmp_path)
    src = tmp_path / "rounds" / "00004" / "auto"
    src.mkdir(parents=True)
    rows = [
        {
            "id": f"p#s{i}",
            "paper_id": "p",
            "text": "We use BERT.",
            "confidence": c,
            "round": 4,
            "annotator_version": "3",
            "entities": [{"start": 7, "end": 11, "text": "BERT", "label": "MethodName", "score": c}],
        }
        for i, c in enumerate([0.9, 0.3, 0.6])
    ]
    (src / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "review.json"
    n, origin = export_review(settings, out, round_id=4, count=2)
    tasks = json.loads(out.read_text())
    assert n == 2 and origin == "round 4"
    assert [t["data"]["sentence_id"] for t in tasks] == ["p#s1", "p#s2"]
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "sciner/v3" and pred["result"][0]["value"]["labels"] == ["MethodName"]
    assert out.with_name("review.label_config.xml").is_file()
    with pytest.raises(FileNotFoundError):
        export_review(settings, out, round_id=99)


def test_sciner_promote_loads_neither_the_trainer_nor_the_metrics_stack():
    """`sciner promote` moves one alias: importing seqeval/scikit-learn, SQLAlchemy or torch made it take 7-8 s."""
    import subprocess
    import sys

    code = (
        "import sys; from training.cli import app; from training.loop_commands import promote; "
        "import training.aliases; print(sorted(m for m in ('torch', 'seqeval', 'sklearn', 'sqlalchemy', "
        "'transformers', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # MLflow's client is imported on the first registry call only
