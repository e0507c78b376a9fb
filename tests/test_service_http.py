"""A real ``bentoml serve service.app:SciNER`` on a loopback port with the tiny trained model:
spans and offsets, every error case, readiness, metrics, OpenAPI, and a schemathesis run."""

from __future__ import annotations

import concurrent.futures as cf
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sciner.predictor import Predictor
from sciner.settings import Settings
from service.process import ServiceProcess, quiet_env, ready_service
from service.swap import predictor_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MAX_CHARS = 3000
MAX_TEXTS = 6
TEXTS = [
    "We fine-tune BERT on SQuAD and reach 90.1 F1 with a learning rate of 1e-4 .",
    "ResNet-50 reaches 76.1 % top-1 accuracy on ImageNet .",
    "Ünïcode café — the Transformer model improves BLEU on WMT14 English-German .",
    "Named entity recognition on CoNLL-2003 is evaluated with span-level F1 .",
]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("svc-http")
    env = quiet_env(
        home,
        SCINER_MODEL_URI=str(tiny_model_dir),
        SCINER_INTRA_OP_THREADS="1",
        SCINER_MAX_CHARS=str(MAX_CHARS),
        SCINER_MAX_BATCH_TEXTS=str(MAX_TEXTS),
        SCINER_MAX_BATCH_SIZE="4",  # < MAX_TEXTS: a full /extract_batch is split across adaptive batches
    )
    with ready_service(env, home / "serve.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    """The predictor the service runs, configured like the service's."""
    return Predictor.from_model_dir(tiny_model_dir, predictor_settings(Settings(intra_op_threads=1)))


def spans(entities):
    return [(e["start"], e["end"], e["text"], e["label"]) for e in entities]


# --- answers ----------------------------------------------------------------------------------
def test_extract_gives_the_predictors_spans_in_character_offsets(client, predictor):
    found = 0
    for text in TEXTS:
        r = client.post("/extract", json={"text": text})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"entities", "model_version", "windows"}
        assert body["model_version"].startswith("local-") and body["windows"] == 1
        for e in body["entities"]:
            assert text[e["start"] : e["end"]] == e["text"] and 0 <= e["score"] <= 1
        expected = predictor.predict_texts([text])[0]  # one request alone = a batch of one
        assert spans(body["entities"]) == [(e.start, e.end, e.text, e.label) for e in expected.entities]
        assert [e["score"] for e in body["entities"]] == pytest.approx([e.score for e in expected.entities], abs=1e-5)
        found += len(body["entities"])
    assert found > 0, "the tiny model should find something in these sentences"


def test_extract_batch_answers_in_order(client, predictor):
    texts = [TEXTS[2], "Short one .", TEXTS[0], TEXTS[1] + " " + TEXTS[3]]
    r = client.post("/extract_batch", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == len(texts)
    expected = predictor.predict_texts(texts)
    labels = set(predictor.labels)
    for text, got, exp in zip(texts, body, expected, strict=True):
        assert got["windows"] == exp.windows
        for e in got["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]
            assert f"B-{e['label']}" in labels


def test_a_batch_larger_than_max_batch_size_is_split_and_reassembled_in_order(client):
    texts = [f"{TEXTS[i % len(TEXTS)]} Item {i} ." for i in range(MAX_TEXTS - 1)]
    texts.insert(2, " ".join([TEXTS[0].rstrip(" .")] * 20) + " .")  # needs several windows
    r = client.post("/extract_batch", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body) == MAX_TEXTS
    for text, got in zip(texts, body, strict=True):
        for e in got["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]
    singles = [client.post("/extract", json={"text": t}).json()["windows"] for t in texts]
    assert [b["windows"] for b in body] == singles and singles[2] > 1


def test_a_long_text_is_windowed_not_truncated(client):
    text = " ".join([TEXTS[0].rstrip(" .")] * 30) + " ."  # one ~500-word sentence
    r = client.post("/extract", json={"text": text})
    assert r.status_code == 200
    assert r.json()["windows"] > 1
    for e in r.json()["entities"]:
        assert text[e["start"] : e["end"]] == e["text"]


def test_concurrent_requests_are_batched_and_all_succeed(client, server):
    def call(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return c.post("/extract", json={"text": TEXTS[i % len(TEXTS)]}).status_code

    with cf.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(call, range(64)))
    assert codes == [200] * 64
    metrics = client.get("/metrics").text
    count = _metric(metrics, r'bentoml_service_adaptive_batch_size_count\{[^}]*method_name="infer"[^}]*\}')
    total = _metric(metrics, r'bentoml_service_adaptive_batch_size_sum\{[^}]*method_name="infer"[^}]*\}')
    assert total > count, "no adaptive batch held more than one request"


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "payload", "status", "fragment"),
    [
        ("/extract", {"text": ""}, 422, "empty"),
        ("/extract", {"text": " \n\t "}, 422, "empty"),
        ("/extract", {"text": "x" * (MAX_CHARS + 1)}, 413, "SCINER_MAX_CHARS"),
        ("/extract", {"text": 42}, 422, "valid string"),
        ("/extract", {"text": None}, 422, "valid string"),
        ("/extract", {"text": ["a"]}, 422, "valid string"),
        ("/extract", {}, 422, "Field required"),
        ("/extract", ["text"], 422, "object"),
        ("/extract_batch", {"texts": []}, 422, "at least one"),
        ("/extract_batch", {"texts": ["ok", "  "]}, 422, "texts[1]"),
        ("/extract_batch", {"texts": ["a"] * (MAX_TEXTS + 1)}, 413, "SCINER_MAX_BATCH_TEXTS"),
        ("/extract_batch", {"texts": ["x" * 2000, "y" * 2000]}, 413, "in all"),
        ("/extract_batch", {"texts": "not a list"}, 422, "valid array"),
        ("/extract_batch", {"texts": [1, 2]}, 422, "valid string"),
    ],
)
def test_bad_json_bodies_get_4xx_with_a_message(client, path, payload, status, fragment):
    r = client.post(path, json=payload)
    assert r.status_code == status, r.text
    assert fragment in json.dumps(r.json())


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"text": "unterminated', {"content-type": "application/json"}, 400),
        (b"\xff\xfe not utf-8", {"content-type": "application/json"}, 400),
        (b"", {"content-type": "application/json"}, 400),
        (b'{"text": "x"}', {"content-type": "text/plain"}, 415),
        (b"text=hello", {"content-type": "application/x-www-form-urlencoded"}, 415),
        (b"--b\r\n\r\nx\r\n--b--", {"content-type": "multipart/form-data; boundary=b"}, 415),
        (b"\x80\x04K\x01.", {"content-type": "application/vnd.bentoml+pickle"}, 415),
    ],
)
def test_invalid_json_and_wrong_content_types_get_4xx(client, content, headers, status):
    r = client.post("/extract", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_a_body_bigger_than_any_valid_request_is_413_before_parsing(client):
    r = client.post(
        "/extract", content=b"x" * (12 * MAX_CHARS + (1 << 20) + 1), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_wrong_methods_and_paths(client):
    assert client.get("/extract").status_code == 405
    assert client.post("/model").status_code == 405
    assert client.get("/no/such/route").status_code == 404


# --- model, health, metrics, OpenAPI -----------------------------------------------------------
def test_model_endpoint(client, tiny_model_dir):
    r = client.get("/model")
    assert r.status_code == 200
    info = r.json()
    assert info["ready"] is True and info["not_ready_reason"] is None
    assert info["name"] == tiny_model_dir.name and info["version"].startswith("local-")
    assert info["source"] == "local" and info["alias"] is None
    assert info["labels"][0] == "O" and "B-TaskName" in info["labels"]
    assert info["provider"] == "CPUExecutionProvider" and info["adaptive_batching"] is True
    assert info["dev_f1"] is not None
    assert datetime.fromisoformat(info["loaded_at"]).tzinfo is not None


def test_health_endpoints(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_metrics_include_ours_and_bentomls(client):
    client.post("/extract", json={"text": TEXTS[0]})
    text = client.get("/metrics").text
    version = client.get("/model").json()["version"]
    assert re.search(rf'sciner_model_info\{{[^}}]*version="{version}"[^}}]*\}} 1\.0', text)
    assert "sciner_model_ready 1.0" in text
    assert _metric(text, r'sciner_windows_per_request_count\{endpoint="extract"\}') >= 1
    assert "sciner_entities_total" in text and "sciner_model_loads_total 1.0" in text
    assert "sciner_model_swaps_total 0.0" in text
    assert "bentoml_service_request_duration_seconds" in text


def test_openapi_shows_the_pydantic_models(client):
    spec = client.get("/docs.json").json()
    for path in ("/extract", "/extract_batch", "/model", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert not [p for p in spec["paths"] if p.startswith("/internal/")]  # called in-process only (404 over HTTP)
    schemas = spec["components"]["schemas"]
    assert {"ExtractResponse", "Entity", "ModelInfo"} <= set(schemas)
    body = spec["paths"]["/extract"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["text"]["maxLength"] == MAX_CHARS


def test_docs_serves_the_swagger_ui_of_the_openapi_document(client):
    page = client.get("/docs", follow_redirects=False)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="swagger-ui"' in page.text and "googletagmanager" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-initializer.js", "swagger-ui.css"):
        assert f"./static_content/{asset}" in page.text
        assert client.get(f"/static_content/{asset}").status_code == 200, asset
    assert '"./docs.json"' in client.get("/static_content/swagger-initializer.js").text


def test_schemathesis_finds_no_server_errors(server, tmp_path):
    local = Path(sys.executable).parent / "schemathesis"
    exe = str(local) if local.exists() else shutil.which("schemathesis")
    assert exe, "schemathesis is not installed"
    cmd = [
        exe, "run", f"{server.url}/docs.json", "--checks", "not_a_server_error",
        "--max-examples", "40", "--seed", "7", "--request-timeout", "60", "--max-failures", "5",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    selected = re.search(r"(\d+) selected / (\d+) total", proc.stdout)
    assert selected and selected.group(1) == selected.group(2) and int(selected.group(1)) >= 8, proc.stdout[:2000]
    assert re.search(r"\d+ generated, \d+ passed", proc.stdout), proc.stdout[-3000:]


# --- not ready: no model, or a GPU that is demanded but absent -----------------------------------
@pytest.fixture(scope="module")
def not_ready_servers(tiny_model_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("svc-not-ready")
    missing = ServiceProcess(
        quiet_env(home / "a", SCINER_MODEL_URI=str(home / "no-such-model"), SCINER_POLL_SECONDS="1"),
        home / "missing.log",
    )
    gpu = ServiceProcess(
        quiet_env(home / "b", SCINER_MODEL_URI=str(tiny_model_dir), SCINER_REQUIRE_GPU="true"),
        home / "gpu.log",
    )
    try:
        missing.start()
        gpu.start()
        missing.wait("/livez", timeout=240)
        gpu.wait("/livez", timeout=240)
        yield missing, gpu
    finally:
        missing.stop()
        gpu.stop()


def test_without_a_model_readyz_is_503_with_the_reason_and_extract_is_503(not_ready_servers):
    missing, _ = not_ready_servers
    with httpx.Client(base_url=missing.url, timeout=30) as c:
        for _ in range(200):
            if c.get("/model").json()["failed_loads"] >= 1:
                break
            time.sleep(0.3)
        r = c.get("/readyz")
        assert r.status_code == 503 and "no model loaded yet" in r.text and "sciner.json missing" in r.text
        r = c.post("/extract", json={"text": TEXTS[0]})
        assert r.status_code == 503 and "no model loaded yet" in r.json()["error"]
        info = c.get("/model").json()
        assert info["ready"] is False and info["version"] is None and info["failed_loads"] >= 1
        assert c.get("/livez").status_code == 200  # alive, just not ready


def test_gpu_demanded_on_a_cpu_host_fails_readiness_with_the_reason(not_ready_servers):
    """No GPU is lent to this task: the CPU-only onnxruntime here lacks CUDA, so demanding it must
    fail readiness (with the reason) while the model still answers on CPU."""
    _, gpu = not_ready_servers
    with httpx.Client(base_url=gpu.url, timeout=30) as c:
        for _ in range(300):
            info = c.get("/model").json()
            if info["version"] is not None:
                break
            time.sleep(0.3)
        assert info["ready"] is False and "GPU demanded" in info["not_ready_reason"]
        r = c.get("/readyz")
        assert r.status_code == 503 and "CUDAExecutionProvider" in r.text
        assert "sciner_model_ready 0.0" in c.get("/metrics").text
        assert c.post("/extract", json={"text": TEXTS[0]}).status_code == 200


def _metric(text: str, pattern: str) -> float:
    m = re.search(pattern + r" ([0-9.e+-]+)", text)
    assert m, f"no sample matching {pattern}"
    return float(m.group(1))


# --- ingestion ---------------------------------------------------------------------------------
def test_ingest_stores_valid_papers_reports_bad_ones_and_deduplicates(client, server):
    from sciner.papers import PaperStore
    from sciner.settings import Settings

    papers = [
        {"paper_id": "2099.acl-long.1", "title": "A title", "abstract": "We propose GazCRF for NER on CoNLL-2003."},
        {"text": "A plain text paper about BERT fine-tuning on SQuAD."},
        {"paper_id": "2099.acl-long.2", "title": 7},
    ]
    r = client.post("/ingest", json={"papers": papers})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["added"] == 2 and [e["index"] for e in body["errors"]] == [2]
    again = client.post("/ingest", json={"papers": papers[:1]}).json()
    assert again["added"] == 0 and len(again["duplicates"]) == 1
    store = PaperStore.from_settings(Settings(home=Path(server.env["SCINER_HOME"])))
    try:
        assert "2099.acl-long.1" in {p.paper_id for p in store.unused_papers(10)}
    finally:
        store.close()


@pytest.mark.parametrize(
    "payload",
    [{"papers": []}, {"papers": [{"title": 1}]}, {"papers": "x"}, {}],
)
def test_ingest_rejects_requests_without_a_valid_paper_with_4xx(client, payload):
    r = client.post("/ingest", json=payload)
    assert 400 <= r.status_code < 500, r.text
    assert r.text
