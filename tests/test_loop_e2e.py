"""Self-training loop end to end: a real MLflow tracking server (sqlite backend) on loopback and real
tiny training on the seed set.

bootstrap -> ingest -> round promoted -> [concurrent round exits; round SIGKILLed mid-training]
-> MLflow unreachable -> round rejected (SCINER_MIN_F1_DELTA=1.0) -> rollback / promote
-> active-learning export -> ingest-gold.

The tests share one server and one bootstrapped champion and run in file order.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sciner.model_dir import sha256_file
from sciner.papers import PaperStore
from sciner.settings import Settings
from tests.conftest import SEED_DEV, SEED_TRAIN
from training.cli import app

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "anthology" / "sample.jsonl"
runner = CliRunner()
SCINER = [sys.executable, "-c", "from training.cli import app; app()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield uri
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory, mlflow_uri) -> dict[str, str]:
    """Environment of every command in this module (tiny, fast settings)."""
    home = tmp_path_factory.mktemp("home")
    return {
        "SCINER_HOME": str(home),
        "SCINER_MLFLOW_TRACKING_URI": mlflow_uri,
        "SCINER_GOLD_TRAIN_PATH": str(SEED_TRAIN),
        "SCINER_GOLD_DEV_PATH": str(SEED_DEV),
        "SCINER_EPOCHS": "1",
        "SCINER_LEARNING_RATE": "3e-4",
        "SCINER_BATCH_SIZE": "8",
        "SCINER_INTRA_OP_THREADS": "1",
        # one torch thread: on a shared, oversubscribed box two OpenMP threads ran ~15x slower per step
        "SCINER_TORCH_THREADS": "1",
        "SCINER_PAPERS_PER_ROUND": "10",
        "SCINER_O_CONFIDENCE_FLOOR": "0.5",
        "SCINER_TARGET_PRECISION": "0.5",
        "SCINER_AUTO_EMPTY_RATIO": "1000",  # the 1-epoch model accepts few entities: keep its O sentences
        "SCINER_THRESHOLD_DEFAULT": "0.6",
        "SCINER_REVIEW_SAMPLE_SIZE": "8",
        "SCINER_ACTIVE_LEARNING_COUNT": "6",
        "SCINER_BOOTSTRAP_SAMPLES": "200",
        "SCINER_HEARTBEAT_SECONDS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    }


def settings(env: dict[str, str], **overrides) -> Settings:
    old = dict(os.environ)
    os.environ.update(env)
    try:
        s = Settings()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return s.model_copy(update=overrides) if overrides else s


def cli(env: dict[str, str], *args: str, **extra: str):
    return runner.invoke(app, list(args), env={**env, **extra})


def client(env):
    from mlflow import MlflowClient

    return MlflowClient(env["SCINER_MLFLOW_TRACKING_URI"])


def aliases(env) -> dict[str, str]:
    return dict(client(env).get_registered_model("sciner").aliases)


def version(env, v: str):
    return client(env).get_model_version("sciner", v)


def artifact_paths(env, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for f in client(env).list_artifacts(run_id, path):
        out |= artifact_paths(env, run_id, f.path) if f.is_dir else {f.path}
    return out


def unused(env) -> int:
    store = PaperStore(settings(env).paper_store_url)
    try:
        return store.count_unused()
    finally:
        store.close()


@pytest.fixture(scope="module")
def champion(env) -> str:
    # a champion trained long enough to find entities: the round then has accepted auto-annotations
    # to train on (a champion that accepts none yields no auto sentences, see SCINER_AUTO_EMPTY_RATIO)
    result = cli(env, "bootstrap", "--epochs", "4")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["decision"] == "promoted"
    return out["version"]


# --- the happy path --------------------------------------------------------------------------
def test_bootstrap_registers_the_first_champion_once(env, champion):
    assert champion == "1" and aliases(env) == {"champion": "1"}
    mv = version(env, "1")
    assert mv.tags["decision"] == "promoted" and mv.tags["kind"] == "bootstrap"
    assert mv.tags["gold_train_sha256"] == sha256_file(SEED_TRAIN)
    assert mv.description.startswith("Promoted: bootstrap model")
    assert {"review/per_class.md", "review/confusion.md", "review/side_by_side.md"} <= artifact_paths(env, mv.run_id)
    again = cli(env, "bootstrap")
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "exists"
    assert len(client(env).search_model_versions("name='sciner'")) == 1


def test_ingest_papers(env, champion):
    result = cli(env, "ingest", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "added 50" in result.stdout and unused(env) == 50


def test_round_promoted_when_the_gate_passes(env, champion, tmp_path):
    # A 1-epoch candidate is no better than a 1-epoch champion: open the gate to exercise promotion.
    result = cli(env, "retrain", "--once", SCINER_MIN_F1_DELTA="-1", SCINER_MAX_CLASS_DROP="1")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["decision"], out["version"], out["champion_before"], out["champion_after"]) == \
        ("promoted", "2", "1", "2")
    assert aliases(env) == {"champion": "2", "challenger": "2"}
    mv = version(env, "2")
    tags = mv.tags
    assert tags["decision"] == "promoted" and tags["parent_version"] == "1" and tags["kind"] == "round"
    assert tags["reason"].startswith("Promoted: micro-F1") and tags["champion_previous"] == "1"
    assert mv.description.startswith("Promoted:") and mv.description.count(". ") == 0
    for key in ("auto_sha256", "train_sha256", "gold_train_sha256", "gold_dev_sha256", "gold_eval_sha256"):
        assert len(tags[key]) == 64
    run = client(env).get_run(mv.run_id)
    m = run.data.metrics
    for key in ("eval_micro_f1", "eval_macro_f1", "eval_token_accuracy", "eval_f1_MethodName",
                "champion_eval_micro_f1", "f1_delta", "bootstrap_delta_lower", "threshold_MethodName",
                "gold_train_sentences", "auto_sentences", "papers_new", "stage_train_s", "stage_register_s"):
        assert key in m, key
    assert m["gold_train_sentences"] == 132 and m["papers_new"] == 10
    assert run.data.params["min_f1_delta"] == "-1.0" and run.data.params["parent_version"] == "1"
    files = artifact_paths(env, mv.run_id)
    assert {"review/per_class.md", "review/confusion.md", "review/confusion.json", "review/side_by_side.md",
            "review/decision.json", "review/thresholds.json", "auto/auto_annotated.jsonl",
            "auto/predictions.jsonl", "auto/active_learning.json"} <= files
    # the snapshot artifact is the data the candidate was trained with, by content hash
    snap = client(env).download_artifacts(mv.run_id, "auto/auto_annotated.jsonl", str(tmp_path))
    assert sha256_file(Path(snap)) == tags["auto_sha256"]
    rows = [json.loads(line) for line in Path(snap).read_text().splitlines()]
    assert len(rows) == m["auto_sentences"] > 0
    assert all(t is None or t == "O" or t[:2] in ("B-", "I-") for r in rows for t in r["tags"])
    # the registered version carries the ONNX model
    from sciner import registry

    folder = registry.fetch_model_dir(settings(env), "2", tmp_path / "fetch")
    assert (folder / "onnx" / "int8" / "model.onnx").is_file() and (folder / "onnx" / "fp32" / "model.onnx").is_file()
    assert unused(env) == 40


# --- faults ----------------------------------------------------------------------------------
def _reader(stream, lines: queue.Queue) -> None:
    buf = ""
    while chunk := stream.read(1):
        buf += chunk
        if chunk in "\r\n":
            lines.put(buf)
            buf = ""
    lines.put(None)


def _wait_for(lines: queue.Queue, marker: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"process ended before {marker!r}:\n" + "".join(seen[-40:]))
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(f"no {marker!r} within {timeout}s:\n" + "".join(seen[-40:]))


def test_concurrent_round_exits_and_a_round_killed_mid_training_changes_nothing(env, champion):
    before_versions = len(client(env).search_model_versions("name='sciner'"))
    proc = subprocess.Popen([*SCINER, "retrain", "--once"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "round lock acquired", 120, seen)
        # a second round while the first runs: exits at once with code 3, never trains
        second = subprocess.run([*SCINER, "retrain", "--once"], env={**os.environ, **env}, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        assert "another round is running" in second.stderr and f"pid={proc.pid}" in second.stderr
        assert "stage=train" not in second.stderr
        _wait_for(lines, "stage=train started", 180, seen)
        time.sleep(2)
        assert proc.poll() is None, "the round finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait()
    assert aliases(env)["champion"] == "2"
    assert len(client(env).search_model_versions("name='sciner'")) == before_versions
    assert unused(env) == 40
    from training.locking import RoundLock

    lock = RoundLock(settings(env).round_lock_path)
    lock.acquire()  # the kernel released the dead holder's lock
    lock.release()


def test_mlflow_unreachable_fails_clearly_and_marks_nothing(env, champion):
    dead = f"http://127.0.0.1:{_free_port()}"
    result = cli(env, "retrain", "--once", SCINER_MLFLOW_TRACKING_URI=dead)
    assert result.exit_code == 1
    assert f"MLflow tracking server {dead} is unreachable" in result.output
    assert unused(env) == 40


def test_registry_failure_after_training_marks_nothing(env, champion, monkeypatch):
    """MLflow fails at registration time (after training): the round fails, its papers stay unused."""
    import shutil

    import training.pipeline
    from sciner import registry
    from training.rounds import RoundError, run_round

    def fake_train(train, dev, out, settings, **kwargs):  # the champion's folder stands in for training
        src = registry.fetch_model_dir(settings, "2", settings.home / "cache" / "registry")
        shutil.copytree(src, out)
        return {"train_seconds": 0.0, "export": {}, "best_epoch": 1}

    def broken(*args, **kwargs):
        raise registry.RegistryError("registering at http://mlflow: connection refused")

    monkeypatch.setattr(training.pipeline, "train_and_export", fake_train)
    monkeypatch.setattr(registry, "register_model_dir", broken)
    with pytest.raises(RoundError, match=r"registering the candidate failed: .*connection refused"):
        run_round(settings(env), progress=False)
    assert unused(env) == 40 and aliases(env)["champion"] == "2"
    store = PaperStore(settings(env).paper_store_url)
    try:
        last = store.rounds(1)[0]
    finally:
        store.close()
    assert last.status == "failed" and "connection refused" in last.reason and last.papers == 0


def test_next_round_succeeds_and_is_rejected_by_a_high_min_delta(env, champion):
    result = cli(env, "retrain", "--once", SCINER_MIN_F1_DELTA="1.0")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["decision"], out["version"], out["champion_after"]) == ("rejected", "3", "2")
    assert out["stats"]["papers_new"] == 10 and out["stats"]["papers_reused"] == 10
    assert aliases(env) == {"champion": "2", "challenger": "3"}
    mv = version(env, "3")
    assert mv.tags["decision"] == "rejected" and mv.tags["parent_version"] == "2"
    assert "not above the required +1.0000" in mv.tags["reason"]
    assert mv.description.startswith("Not promoted:")
    assert unused(env) == 30
    store = PaperStore(settings(env).paper_store_url)
    try:
        rounds = {r.id: r for r in store.rounds()}
    finally:
        store.close()
    statuses = sorted(r.status for r in rounds.values())
    assert statuses == ["abandoned", "failed", "registered", "registered", "registered"]  # killed, failed
    assert rounds[out["round_id"]].papers == 20


def test_rollback_and_promote_move_the_champion(env, champion):
    result = cli(env, "rollback")
    assert result.exit_code == 0 and "v2 -> v1" in result.stdout
    assert aliases(env)["champion"] == "1" and version(env, "2").tags["rolled_back_to"] == "1"
    result = cli(env, "promote", "--version", "3", "--reason", "reviewed by hand")
    assert result.exit_code == 0 and "v1 -> v3" in result.stdout
    tags = version(env, "3").tags
    assert tags["champion_previous"] == "1" and tags["manual_reason"] == "reviewed by hand"
    assert tags["decision"] == "rejected"  # the gate's verdict stays on record
    assert cli(env, "rollback").exit_code == 0 and aliases(env)["champion"] == "1"
    missing = cli(env, "promote", "--version", "99")
    assert missing.exit_code == 1 and aliases(env)["champion"] == "1"


def test_active_learning_export_and_gold_ingest(env, champion, tmp_path):
    out = tmp_path / "review.json"
    result = cli(env, "export-review", "--version", "3", "--count", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    tasks = json.loads(out.read_text())
    assert len(tasks) == 4 and all(t["predictions"][0]["model_version"] == "sciner/v2" for t in tasks)
    confidences = [t["data"]["confidence"] for t in tasks]
    assert confidences == sorted(confidences)
    # a human corrects the first task in Label Studio and exports it
    task = tasks[0]
    task["annotations"] = [{"result": [{"value": {"start": 0, "end": len(task["data"]["text"].split()[0]),
                                                  "labels": ["MethodName"]}}]}]
    corrected = tmp_path / "corrected.json"
    corrected.write_text(json.dumps([task]))
    result = cli(env, "ingest-gold", str(corrected))
    assert result.exit_code == 0 and "added 1" in result.stdout, result.output
    from training.rounds import load_gold

    gold = load_gold(settings(env))
    assert len(gold.additions) == 1 and gold.additions[0].tags[0] == "B-MethodName"
    assert len(gold.train_all) == 133
