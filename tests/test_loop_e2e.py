"""Self-training loop end to end: a real MLflow tracking server (sqlite backend) on loopback and real
tiny training on the seed set.

bootstrap -> ingest -> round promoted -> [concurrent round exits; round SIGKILLed mid-training]
-> MLflow unreachable -> round rejected (SCINER_MIN_F1_DELTA=1.0) -> rollback / promote
-> active-learning export -> ingest-gold -> teacher rounds -> a model trained outside the loop challenges.

The tests share one server and one bootstrapped champion and run in file order.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sciner.io.jsonl import read_jsonl
from sciner.model_dir import read_metadata, sha256_file, write_metadata
from sciner.papers import PaperStore
from sciner.settings import Settings
from service.mlflow_process import mlflow_server
from service.process import free_port
from tests.conftest import SEED_DEV, SEED_TRAIN
from training.cli import app
from training.gold import load_gold

pytestmark = pytest.mark.slow

N_PAPERS = 50
runner = CliRunner()
SCINER = [sys.executable, "-c", "from training.cli import app; app()"]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


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
        # a round's soup exports, calibrates and scores a second model: only the round that pins it averages
        "SCINER_ROUND_SOUP": "false",
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


def artifact_json(env, run_id: str, path: str, tmp_path: Path):
    return json.loads(Path(client(env).download_artifacts(run_id, path, str(tmp_path))).read_text())


LINEAGE_HASH_TAGS = {"auto_sha256", "train_sha256", "gold_train_sha256", "gold_dev_sha256", "gold_additions_sha256"}


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
def test_bootstrap_registers_the_first_champion_once(env, champion, tmp_path):
    assert champion == "1" and aliases(env) == {"champion": "1"}
    mv = version(env, "1")
    assert mv.tags["decision"] == "promoted" and mv.tags["kind"] == "bootstrap"
    assert mv.description.startswith("Promoted: bootstrap, ")
    assert {
        "review/per_class.md",
        "review/confusion.md",
        "review/errors.md",
        "review/side_by_side.md",
        "review/side_by_side.html",
        "review/lineage.json",
    } <= artifact_paths(env, mv.run_id)
    lineage = artifact_json(env, mv.run_id, "review/lineage.json", tmp_path)
    assert lineage["data"]["gold_train"]["sha256"] == sha256_file(SEED_TRAIN)
    assert mv.tags["data_sha256"] == lineage["data_sha256"] and not LINEAGE_HASH_TAGS & set(mv.tags)
    # the PyTorch checkpoint goes beside the served model, for later rounds to average with
    assert {"checkpoint/model.safetensors", "checkpoint/config.json"} <= artifact_paths(env, mv.run_id)
    assert not any(p.startswith("model/") and "/hf/" in p for p in artifact_paths(env, mv.run_id))
    again = cli(env, "bootstrap")
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "exists"
    assert len(client(env).search_model_versions("name='sciner'")) == 1


@pytest.fixture(scope="module")
def seed_papers(tmp_path_factory) -> Path:
    """50 papers (anthology schema) made of the seed set's sentences, each opened by words of its own so that
    no paper sentence is a gold sentence (gold ingest would drop a correction of one as a duplicate): the
    loop runs without ../shared, as the README promises."""
    sentences = [*read_jsonl(SEED_TRAIN), *read_jsonl(SEED_DEV)]
    path = tmp_path_factory.mktemp("papers") / "papers.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for k in range(N_PAPERS):
            part = sentences[k::N_PAPERS]
            paper = {"paper_id": f"seed-paper-{k:03d}", "title": f"Seed paper {k}"}
            abstract = " ".join(f"In study {k} , " + " ".join(s.tokens) for s in part)
            fh.write(json.dumps({**paper, "abstract": abstract}) + "\n")
    return path


def test_ingest_papers(env, champion, seed_papers):
    result = cli(env, "ingest", str(seed_papers))
    assert result.exit_code == 0, result.output
    assert f"added {N_PAPERS}" in result.stdout and unused(env) == N_PAPERS


def test_round_promoted_when_the_gate_passes(env, champion, tmp_path):
    # A 1-epoch candidate is no better than a 1-epoch champion: open the gate to exercise promotion.
    result = cli(
        env,
        "retrain",
        "--once",
        SCINER_MIN_F1_DELTA="-1",
        SCINER_MAX_CLASS_DROP="1",
        SCINER_PROMOTION_RULE="delta",
        SCINER_ROUND_SOUP="true",  # the default; off for this module's other rounds
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["decision"], out["version"], out["champion_before"], out["champion_after"]) == (
        "promoted",
        "2",
        "1",
        "2",
    )
    assert aliases(env) == {"champion": "2", "challenger": "2"}
    mv = version(env, "2")
    tags = mv.tags
    assert tags["decision"] == "promoted" and tags["parent_version"] == "1" and tags["kind"] == "round"
    assert tags["reason"].startswith("Promoted: micro-F1") and tags["champion_previous"] == "1"
    assert mv.description.startswith("Promoted: ") and " F1 vs v1 — " in mv.description
    assert mv.description.count(". ") == 0  # one sentence
    assert len(tags["data_sha256"]) == 64 and not LINEAGE_HASH_TAGS & set(tags)  # hashes: review/lineage.json
    run = client(env).get_run(mv.run_id)
    m = run.data.metrics
    for key in (
        "eval_micro_f1",
        "eval_macro_f1",
        "eval_token_accuracy",
        "eval_f1_MethodName",
        "champion_eval_micro_f1",
        "f1_delta",
        "bootstrap_delta_lower",
        "threshold_MethodName",
        "gold_train_sentences",
        "auto_sentences",
        "papers_new",
        "stage_train_s",
        "stage_register_s",
    ):
        assert key in m, key
    # the seed set minus its carved evaluation documents (2 of 12 documents, 23 sentences); both versions
    # were judged on the same split, and say which
    assert m["gold_train_sentences"] == 109 and m["gold_eval_sentences"] == 23 and m["papers_new"] == 10
    assert tags["eval_split"].startswith("carved:0.15:") and tags["eval_split_documents"] == "2"
    assert tags["eval_split_sha256"] == version(env, "1").tags["eval_split_sha256"]
    assert run.data.params["min_f1_delta"] == "-1.0" and run.data.params["parent_version"] == "1"
    files = artifact_paths(env, mv.run_id)
    assert {
        "review/per_class.md",
        "review/confusion.md",
        "review/confusion.json",
        "review/errors.json",
        "review/side_by_side.md",
        "review/side_by_side.html",
        "review/decision.json",
        "review/thresholds.json",
        "review/lineage.json",
        "auto/auto_annotated.jsonl",
        "auto/predictions.jsonl",
        "auto/active_learning.json",
    } <= files
    # the snapshot artifact is the data the candidate was trained with, by content hash
    snap = client(env).download_artifacts(mv.run_id, "auto/auto_annotated.jsonl", str(tmp_path))
    lineage = artifact_json(env, mv.run_id, "review/lineage.json", tmp_path)
    assert sha256_file(Path(snap)) == lineage["data"]["auto_annotated"]["sha256"]
    # where each model's errors are, the candidate's beside its champion's, on the same gold entities
    errors = artifact_json(env, mv.run_id, "review/errors.json", tmp_path)
    assert len(errors) == 2 and "candidate" in errors
    gold_side = {
        name: sum(n for counts in per_type.values() for kind, n in counts.items() if kind != "spurious")
        for name, per_type in errors.items()
    }
    assert len(set(gold_side.values())) == 1 and gold_side["candidate"] > 0
    assert lineage["data_sha256"] == tags["data_sha256"]
    for key in ("gold_train", "gold_dev", "gold_eval", "train_as_used"):
        assert len(lineage["data"][key]["sha256"]) == 64, key
    rows = [json.loads(line) for line in Path(snap).read_text().splitlines()]
    assert len(rows) == m["auto_sentences"] > 0
    assert all(t is None or t == "O" or t[:2] in ("B-", "I-") for r in rows for t in r["tags"])
    # the registered version carries the ONNX model
    from sciner import registry

    folder = registry.fetch_model_dir(settings(env), "2", tmp_path / "fetch")
    assert (folder / "onnx" / "int8" / "model.onnx").is_file() and (folder / "onnx" / "fp32" / "model.onnx").is_file()
    assert unused(env) == 40
    # the candidate is the average of the model the round trained and the champion (SCINER_ROUND_SOUP)
    assert tags["soup"] == "weights averaged with champion v1's" and m["souped"] == 1.0
    assert 0 <= m["trained_alone_eval_micro_f1"] <= 1
    assert "; weights averaged with champion v1's (trained alone: eval micro-F1 0." in mv.description
    members = read_metadata(folder).training["soup"]["members"]
    assert [x["folder"] for x in members] == [f"round {tags['round_id']} model", "champion v1"]
    champion_checkpoint = registry.fetch_checkpoint(settings(env), "1", tmp_path / "checkpoints")
    assert members[1]["weights_sha256"] == sha256_file(champion_checkpoint / "model.safetensors")
    assert "checkpoint/model.safetensors" in files


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
    proc = subprocess.Popen(
        [*SCINER, "retrain", "--once"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "round lock acquired", 120, seen)
        # a second round while the first runs: exits at once with code 3, never trains
        second = subprocess.run(
            [*SCINER, "retrain", "--once"], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
        )
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
    dead = f"http://127.0.0.1:{free_port()}"
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

    def fake_train(train, dev, out, settings, **kwargs):  # the champion (folder, checkpoint) stands in for training
        cache = settings.home / "cache" / "registry"
        shutil.copytree(registry.fetch_model_dir(settings, "2", cache), out)
        shutil.copytree(registry.fetch_checkpoint(settings, "2", cache), out / "hf")
        return {"train_seconds": 0.0, "best_epoch": 1}

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
    # the default rule (bootstrap and seed spread), so that the rounds of this module log every gate metric;
    # distilling without a teacher folder: the champion teaches its successor (self-distillation)
    result = cli(env, "retrain", "--once", SCINER_MIN_F1_DELTA="1.0", SCINER_ROUND_DISTILL="true")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["decision"], out["version"], out["champion_after"]) == ("rejected", "3", "2")
    assert out["stats"]["papers_new"] == 10 and out["stats"]["papers_reused"] == 10
    assert aliases(env) == {"champion": "2", "challenger": "3"}
    mv = version(env, "3")
    assert mv.tags["decision"] == "rejected" and mv.tags["parent_version"] == "2"
    assert "not above the required +1.0000" in mv.tags["reason"]
    assert mv.tags["distilled_from"] == mv.tags["annotator"] == "champion v2"
    assert "distilled from its distributions" in mv.description
    verdict = mv.description.split(" — ")[0]  # the check that failed: a class drop, or the gain below +100.0
    assert verdict.startswith("Rejected: ") and " F1 vs v2" in verdict and len(verdict) < 60
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
    mv = version(env, "3")
    tags = mv.tags
    assert tags["champion_previous"] == "1" and tags["promotion_reason"] == "reviewed by hand"
    assert tags["decision"] == "rejected"  # the gate's verdict stays on record
    # the version page tells who, why and when first, then what the gate said
    assert mv.description.startswith(
        f"Promoted by hand by {tags['promoted_by']} ({tags['promoted_at']}): reviewed by hand. | gate: Rejected: "
    )
    assert cli(env, "rollback").exit_code == 0 and aliases(env)["champion"] == "1"
    missing = cli(env, "promote", "--version", "99")
    assert missing.exit_code == 1 and aliases(env)["champion"] == "1"


def test_rollback_after_an_alias_move_through_the_rest_api_returns_to_the_version_that_served(env, champion):
    """Someone moves `champion` v3 -> v2 with MLflow's REST API (as the UI does): sciner records nothing
    then, but `sciner rollback` still goes back to v3, the version that served before the move."""
    assert aliases(env)["champion"] == "1"
    result = cli(env, "promote", "--version", "3", "--reason", "serves again")
    assert result.exit_code == 0 and "v1 -> v3" in result.stdout, result.output
    request = urllib.request.Request(
        f"{env['SCINER_MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias",
        method="POST",
        data=json.dumps({"name": "sciner", "alias": "champion", "version": "2"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    assert aliases(env)["champion"] == "2"  # v2 carries champion_previous=1 from its own round
    result = cli(env, "rollback")
    assert result.exit_code == 0 and "v2 -> v3" in result.stdout, result.output
    assert aliases(env)["champion"] == "3"
    history = json.loads(client(env).get_registered_model("sciner").tags["champion_history"])
    assert [(m["version"], m["kind"]) for m in history][-3:] == [("3", "manual"), ("2", "observed"), ("3", "rollback")]
    assert cli(env, "rollback").exit_code == 0 and aliases(env)["champion"] == "1"  # and on, down the stack


REVIEW_MD = Path(__file__).resolve().parents[1] / "mlflow" / "REVIEW.md"
FILE_SUFFIXES = (".md", ".json", ".jsonl", ".png", ".html", ".csv", ".xml")


def review_md_sections() -> dict[str, list[str]]:
    """REVIEW.md's ``### `` sections -> the backticked names in the first column of their tables
    (``<Class>``-style placeholders kept), plus ``"*"``: every backticked name outside code blocks."""
    import re

    text = re.sub(r"```.*?```", "", REVIEW_MD.read_text(encoding="utf-8"), flags=re.S)
    sections: dict[str, list[str]] = {"*": re.findall(r"`([^`]+)`", text)}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("| `") and heading:
            sections.setdefault(heading, []).extend(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return sections


def named(pattern: str, existing: set[str]) -> bool:
    import re

    regex = re.escape(pattern).replace(re.escape("<Class>"), "[A-Za-z]+").replace(re.escape("<stage>"), "[a-z_]+")
    return any(re.fullmatch(regex, name) for name in existing)


def test_review_md_names_only_what_a_real_round_produces(env, champion):
    """Every alias, tag, metric, param, artifact, command and setting REVIEW.md names exists in the registry
    after the real rounds of this module (bootstrap v1, promoted v2, rejected v3, promote, rollback)."""
    import re

    from sciner.settings import Settings

    c = client(env)
    versions = c.search_model_versions("name='sciner'")
    runs = [c.get_run(v.run_id) for v in versions]
    model = c.get_registered_model("sciner")
    existing = {
        "Tags (on the model version)": {k for v in versions for k in v.tags},
        "Tags (on the registered model)": set(model.tags),
        "Metrics (on the run)": {k for r in runs for k in r.data.metrics},
        "Artifacts (on the run)": set().union(*(artifact_paths(env, r.info.run_id) for r in runs)),
        "Params (on the run)": {k for r in runs for k in r.data.params},
    }
    sections = review_md_sections()
    for heading, names in existing.items():
        assert sections.get(heading) or heading.startswith("Params"), f"REVIEW.md has no {heading!r} table"
        for name in sections.get(heading, []):
            assert named(name, names), f"REVIEW.md, {heading}: `{name}` is not produced by a real round"
    assert set(sections["Reviewing models in the MLflow registry"]) == set(model.aliases) == {"champion", "challenger"}
    everything = sections["*"]
    params = re.findall(r"`([a-z0-9_]+)`", REVIEW_MD.read_text().split("### Params (on the run)")[1].split("###")[0])
    for name in params:
        assert name in existing["Params (on the run)"], f"REVIEW.md, Params: `{name}` is not a param of a run"
    basenames = {Path(p).name for p in existing["Artifacts (on the run)"]}
    repo = REVIEW_MD.parents[1]
    for name in everything:
        if name.endswith(FILE_SUFFIXES) and not (repo / name).is_file():  # a repository file is no artifact
            assert Path(name).name in basenames, f"REVIEW.md names a file no run has: `{name}`"
    for setting in re.findall(r"SCINER_[A-Z0-9_]+", REVIEW_MD.read_text()):
        assert setting.removeprefix("SCINER_").lower() in Settings.model_fields, f"no setting {setting}"
    commands = set(re.findall(r"(?:`|bin/|-- )sciner ([a-z][a-z-]+)", REVIEW_MD.read_text()))  # as typed
    assert {"rollback", "promote"} <= commands
    for command in commands:
        assert cli(env, command, "--help").exit_code == 0, f"REVIEW.md names `sciner {command}`, which does not exist"


def test_review_page_shows_every_gold_and_predicted_entity_of_the_sample(env, champion, tmp_path):
    from html.parser import HTMLParser

    from training.review_html import spans

    run_id = version(env, "3").run_id
    page = Path(client(env).download_artifacts(run_id, "review/side_by_side.html", str(tmp_path))).read_text("utf-8")
    rows = [
        json.loads(line)
        for line in Path(client(env).download_artifacts(run_id, "review/side_by_side.jsonl", str(tmp_path)))
        .read_text("utf-8")
        .splitlines()
    ]

    class Entities(HTMLParser):
        """(sentence index, who, entity text, label) of every highlighted entity on the page."""

        def __init__(self) -> None:
            super().__init__()
            self.found: list[tuple[int, str, str, str]] = []
            self.sentence, self.open, self.text = -1, None, ""

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if a.get("class") == "sent":
                self.sentence += 1
            elif "data-who" in a and self.sentence >= 0:
                self.open, self.text = (a["data-who"], a["data-label"]), ""
            elif tag == "b" and self.open:  # the class name inside the highlight
                self.found.append((self.sentence, *self.open[:1], self.text.strip(), self.open[1]))
                self.open = None

        def handle_data(self, data):
            if self.open:
                self.text += data

    parser = Entities()
    parser.feed(page)
    expected = sorted(
        (i, who, " ".join(r["tokens"][s.start : s.end]), s.label)
        for i, r in enumerate(rows)
        for who in ("gold", "champion", "candidate")
        for s in spans(r[who])
    )
    assert expected and sorted(parser.found) == expected
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert all(f">{label}</span>" in page for label in ("MethodName", "DatasetName", "TaskName"))  # the legend
    assert "data:image/png;base64," in page and "<th>ΔF1</th>" in page
    disagree = [i for i, r in enumerate(rows) if r["champion"] != r["candidate"]]
    assert disagree == list(range(len(disagree)))  # sentences where the models disagree come first
    markdown = Path(client(env).download_artifacts(run_id, "review/side_by_side.md", str(tmp_path))).read_text()
    assert "](" not in markdown and "⟨" in markdown  # classes as text, never as links
    decision = artifact_json(env, run_id, "review/decision.json", tmp_path)
    assert decision["checks"] and all(isinstance(v, bool) for v in decision["checks"].values())


def test_mlflow_models_predict_runs_a_registered_version(env, champion, tmp_path, monkeypatch):
    from mlflow.models import get_model_info

    import mlflow

    # MLflow downloads a models:/ URI into a fresh temporary folder that it never removes (110 MB here, in
    # this process and in `mlflow models predict`): keep both inside the test's own folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mlflow.set_tracking_uri(env["SCINER_MLFLOW_TRACKING_URI"])
    info = get_model_info("models:/sciner/2")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["text"]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["entities", "windows"]
    assert info.saved_input_example_info is not None
    text = "We fine-tune BERT with a learning rate of 2e-5 and reach 84.6 accuracy on MNLI."
    (tmp_path / "in.json").write_text(json.dumps({"dataframe_records": [{"text": text}]}))
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "models",
            "predict",
            "-m",
            "models:/sciner/2",
            "--env-manager",
            "local",
            "-i",
            str(tmp_path / "in.json"),
            "-t",
            "json",
            "-o",
            str(tmp_path / "out.json"),
        ],
        env={**os.environ, **env, "MLFLOW_TRACKING_URI": env["SCINER_MLFLOW_TRACKING_URI"], "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [prediction] = json.loads((tmp_path / "out.json").read_text())["predictions"]
    assert prediction["windows"] == 1
    for e in prediction["entities"]:
        assert text[e["start"] : e["end"]] == e["text"] and set(e) == {"start", "end", "text", "label", "score"}
    model = client(env).get_registered_model("sciner")
    assert "ACL SciNER" in model.description and model.tags["labels"].split(",")[0] == "MethodName"
    # sciner's own command takes the same URIs, and without one the serving model (the champion)
    for args in (["models:/sciner/2"], []):
        result = cli(env, "predict", *args, "--text", text)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == text
    missing = cli(env, "predict", "models:/sciner@nope", "--text", text)
    assert missing.exit_code == 2 and "no such alias" in missing.output


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
    task["annotations"] = [
        {"result": [{"value": {"start": 0, "end": len(task["data"]["text"].split()[0]), "labels": ["MethodName"]}}]}
    ]
    corrected = tmp_path / "corrected.json"
    corrected.write_text(json.dumps([task]))
    result = cli(env, "ingest-gold", str(corrected))
    assert result.exit_code == 0 and "added 1" in result.stdout, result.output
    gold = load_gold(settings(env))
    assert len(gold.additions) == 1 and gold.additions[0].tags[0] == "B-MethodName"
    assert len(gold.train_all) == 110  # 109 seed train sentences outside the evaluation split + 1


# --- a teacher annotates (issue 14) ----------------------------------------------------------
def teacher_folder(env, tmp_path: Path) -> tuple[Path, str]:
    """Any sciner model folder can teach (the MPNet teacher in production); here the first champion's
    folder, as ``mpnet-teacher``, and the 12 hex of its int8 ONNX file the lineage names it by."""
    from sciner import registry

    teacher = tmp_path / "mpnet-teacher"
    shutil.copytree(registry.fetch_model_dir(settings(env), "1", tmp_path / "fetch"), teacher)
    return teacher, sha256_file(teacher / "onnx" / "int8" / "model.onnx")[:12]


def test_a_teacher_folder_that_is_not_a_model_fails_the_round_and_uses_no_paper(env, champion, tmp_path):
    before, versions = unused(env), len(client(env).search_model_versions("name='sciner'"))
    result = cli(env, "retrain", "--once", SCINER_ANNOTATOR_MODEL=str(tmp_path))
    assert result.exit_code == 1
    assert f"SCINER_ANNOTATOR_MODEL={tmp_path} is not a sciner model folder" in result.output
    assert unused(env) == before and len(client(env).search_model_versions("name='sciner'")) == versions


def test_a_round_annotated_and_distilled_by_a_teacher_folder_records_the_teacher_everywhere(env, champion, tmp_path):
    """The teacher annotates the round's papers (its lineage, predictions and review tasks name it) and, with
    SCINER_ROUND_DISTILL, the round's model learns its distributions (the version says so)."""
    from sciner import registry

    teacher, digest = teacher_folder(env, tmp_path)
    result = cli(
        env,
        "retrain",
        "--once",
        "--force",
        SCINER_ANNOTATOR_MODEL=str(teacher),
        SCINER_ROUND_DISTILL="true",
        SCINER_MIN_F1_DELTA="1.0",
    )
    assert result.exit_code == 0, result.output
    mv = version(env, json.loads(result.stdout)["version"])
    assert mv.tags["annotator"] == f"teacher mpnet-teacher (sha256 {digest})"
    assert "training sentences auto-annotated by teacher mpnet-teacher" in mv.description
    assert client(env).get_run(mv.run_id).data.params["annotator_model"] == str(teacher)
    rows = Path(client(env).download_artifacts(mv.run_id, "auto/predictions.jsonl", str(tmp_path))).read_text()
    assert {json.loads(r)["annotator_version"] for r in rows.splitlines()} == {f"teacher:mpnet-teacher@{digest}"}
    tasks = json.loads(
        Path(client(env).download_artifacts(mv.run_id, "auto/active_learning.json", str(tmp_path))).read_text()
    )
    assert {t["predictions"][0]["model_version"] for t in tasks} == {f"teacher:mpnet-teacher@{digest}"}
    assert mv.tags["distilled_from"] == f"teacher mpnet-teacher (sha256 {digest})"
    assert client(env).get_run(mv.run_id).data.params["round_distill"] == "True"
    # the gold part and the round's auto-annotated part, each cached on its own, merged in that order
    cache = Path(env["SCINER_HOME"]) / "distill"
    metas = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    # what the champion taught an earlier round is pruned: the cache holds this round's files only
    assert [m["teacher"] for m in metas if m.get("owner") == "round"] == [str(teacher)] * 2
    parts = {m["sentences"]: m["sha256"] for m in metas if m["teacher"] == str(teacher)}
    n_gold = len(load_gold(settings(env)).train_all)
    (n_auto,) = set(parts) - {n_gold}
    merged = hashlib.sha256(f"{parts[n_gold]}\n{parts[n_auto]}".encode()).hexdigest()
    lineage = artifact_json(env, mv.run_id, "review/lineage.json", tmp_path)
    assert lineage["data"]["auto_annotated"]["annotator_version"] == f"teacher:mpnet-teacher@{digest}"
    assert lineage["data"]["teacher_soft_targets"] == {
        "sha256": merged,
        "teacher_version": f"teacher:mpnet-teacher@{digest}",
    }
    assert f"distilled from its distributions on all {n_gold + n_auto}" in mv.description
    folder = registry.fetch_model_dir(settings(env), mv.version, tmp_path / "fetched")
    split_record = load_gold(settings(env)).split.tags  # the teacher (v1, a bootstrap) left it out too
    assert read_metadata(folder).data["soft_targets"] == {
        "sha256": merged,
        "teacher": str(teacher),
        "sentences": n_gold + n_auto,
        "teachers_eval_split_excluded": {str(teacher): split_record},
    }
    assert read_metadata(folder).data["eval_split_excluded"] == split_record


def test_a_version_registered_without_its_checkpoint_has_none_to_fetch(env, champion, tmp_path):
    from sciner import registry

    folder = registry.fetch_model_dir(settings(env), "1", tmp_path / "fetch")
    shutil.copytree(registry.fetch_checkpoint(settings(env), "1", tmp_path / "ckpt"), folder / "hf")
    bare = registry.register_model_dir(settings(env, register_checkpoint=False), folder, run_name="no-checkpoint")
    assert registry.fetch_checkpoint(settings(env), bare.version, tmp_path / "ckpt") is None
    assert not any(p.startswith("checkpoint/") for p in artifact_paths(env, bare.run_id))


# --- a model trained outside the loop challenges the champion --------------------------------
def outside_model(env, tmp_path: Path, name: str) -> Path:
    """A model folder as a GPU run would hand over: here v1's (a bootstrap: it records the split it left out)
    with its checkpoint inside."""
    from sciner import registry

    folder = tmp_path / name
    shutil.copytree(registry.fetch_model_dir(settings(env), "1", tmp_path / "fetch"), folder)
    shutil.copytree(registry.fetch_checkpoint(settings(env), "1", tmp_path / "ckpt"), folder / "hf")
    return folder


def n_versions(env) -> int:
    return len(client(env).search_model_versions("name='sciner'"))


def test_a_challenger_without_a_split_record_is_refused_unless_trusted_and_then_judged(env, champion, tmp_path):
    folder = outside_model(env, tmp_path, "gpu-student")
    meta = read_metadata(folder)
    del meta.data["eval_split_excluded"]
    write_metadata(folder, meta)
    before, champ = n_versions(env), aliases(env)["champion"]
    refused = cli(env, "challenge", str(folder))
    assert refused.exit_code == 2 and "the gate cannot judge gpu-student fairly" in refused.output
    assert "--trust-split REASON" in refused.output and n_versions(env) == before
    not_a_model = cli(env, "challenge", str(tmp_path / "fetch"))
    assert not_a_model.exit_code == 2 and "is not a sciner model folder" in not_a_model.output

    trust = ["--trust-split", "trained on train minus the eval docs"]
    result = cli(env, "challenge", str(folder), *trust, SCINER_MIN_F1_DELTA="1.0")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    mv = version(env, out["version"])
    # registered whatever the verdict; the gate (here demanding +1.0) keeps the champion
    assert out["decision"] == "rejected" and aliases(env)["champion"] == champ
    assert aliases(env)["challenger"] == out["version"]
    assert mv.tags["kind"] == "challenge" and mv.tags["split_check"].startswith(
        "trusted: trained on train minus the eval docs (not recorded: gpu-student does not record"
    )
    assert mv.description.startswith("Rejected") and "challenge of gpu-student against v" in mv.description


def test_a_challenger_that_left_out_the_split_is_promoted_when_the_gate_passes(env, champion, tmp_path):
    folder = outside_model(env, tmp_path, "gpu-student")
    before = aliases(env)["champion"]
    result = cli(
        env,
        "challenge",
        str(folder),
        "--why",
        "MiniLM distilled on a GPU",
        # identical weights pass only a gate that asks for no gain
        SCINER_PROMOTION_RULE="delta",
        SCINER_MIN_F1_DELTA="-1.0",
        SCINER_MAX_CLASS_DROP="1.0",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["decision"] == "promoted" and out["champion_before"] == before
    assert aliases(env)["champion"] == aliases(env)["challenger"] == out["version"]
    mv = version(env, out["version"])
    assert mv.tags["split_check"] == "recorded: left out the gate's evaluation split"
    assert mv.tags["challenge_reason"] == "MiniLM distilled on a GPU" and mv.tags["champion_previous"] == before
    assert mv.tags["eval_split_sha256"] == version(env, "1").tags["eval_split_sha256"]
    for tag in review_md_sections()["Tags of a challenge (on the model version)"]:
        assert tag in mv.tags, f"REVIEW.md names `{tag}`, which a challenge does not set"
    paths = artifact_paths(env, mv.run_id)
    assert "review/per_class.md" in paths and any(p.startswith("checkpoint/") for p in paths)
    assert not list((settings(env).home / "challenges").iterdir())  # registered: no local copy of the review left
    metrics = client(env).get_run(mv.run_id).data.metrics
    assert metrics["promoted"] == 1.0
    assert metrics["f1_delta"] == pytest.approx(metrics["eval_micro_f1"] - metrics["champion_eval_micro_f1"])
