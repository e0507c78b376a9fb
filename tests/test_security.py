"""Security and abuse resistance against a real ``bentoml serve service.app:SciNER`` on loopback,
with bearer tokens on: each attack of issue 12 and the status it now gets, tokens and scopes, the
internal batched route closed to HTTP, cross-site writes refused, one 400/422 convention, long
texts on their own lane, and a scan of the captured server log for any request text or token."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import re
import time
from pathlib import Path

import httpx
import pytest

from sciner.predictor import Predictor
from sciner.settings import Settings
from service.process import ServiceProcess, quiet_env, ready_service
from service.swap import predictor_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

READ_TOKEN = "read-token-for-tests-0123456789"
WRITE_TOKEN = "write-token-for-tests-9876543210"
# Every request body below carries this marker; the server log must never contain it.
MARKER = "CONFIDENTIAL-PAPER-7f3a"
SENTENCE = f"We fine-tune BERT on SQuAD and reach 90.1 F1 ( {MARKER} ) ."
LONG_TEXT_CHARS = 600
PIECE_CHARS = 300
MAX_CHARS = 60_000


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("svc-security")
    env = quiet_env(
        home,
        SCINER_MODEL_URI=str(tiny_model_dir),
        SCINER_INTRA_OP_THREADS="1",
        SCINER_AUTH_ENABLED="true",
        SCINER_API_READ_TOKENS=READ_TOKEN,  # a plain token ...
        SCINER_API_WRITE_TOKENS="sha256:" + hashlib.sha256(WRITE_TOKEN.encode()).hexdigest(),  # ... and a hash
        SCINER_AUTH_METRICS="true",
        SCINER_MAX_CHARS=str(MAX_CHARS),
        SCINER_LONG_TEXT_CHARS=str(LONG_TEXT_CHARS),
        SCINER_PIECE_CHARS=str(PIECE_CHARS),
        SCINER_LOG_LEVEL="INFO",
    )
    with ready_service(env, home / "serve.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def anon(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def _client(server: ServiceProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=120, headers={"authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def reader(server):
    with _client(server, READ_TOKEN) as c:
        yield c


@pytest.fixture(scope="module")
def writer(server):
    with _client(server, WRITE_TOKEN) as c:
        yield c


def paper(n: int) -> dict:
    return {"paper_id": f"2099.sec-{n}", "title": f"Paper {n}", "abstract": f"We study GazCRF {n} . {MARKER}"}


def stored_ids(server: ServiceProcess) -> set[str]:
    from sciner.papers import PaperStore

    store = PaperStore.from_settings(Settings(home=Path(server.env["SCINER_HOME"])))
    try:
        return {p.paper_id for p in store.unused_papers(1000)}
    finally:
        store.close()


# --- tokens and scopes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/extract", {"text": SENTENCE}),
        ("POST", "/extract_batch", {"texts": [SENTENCE]}),
        ("GET", "/model", None),
        ("GET", "/metrics", None),
        ("POST", "/ingest", {"papers": [paper(0)]}),
    ],
)
def test_without_a_token_every_api_route_is_401(anon, method, path, body):
    r = anon.request(method, path, json=body)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer") and "Authorization" in r.json()["error"]
    r = anon.request(method, path, json=body, headers={"authorization": "Bearer not-a-known-token-at-all"})
    assert r.status_code == 401 and r.json()["error"] == "invalid token"


def test_probes_and_the_api_description_stay_open(anon):
    assert anon.get("/livez").status_code == 200
    assert anon.get("/readyz").status_code == 200
    assert "/extract" in anon.get("/docs.json").json()["paths"]


def test_a_read_token_reads_but_cannot_write(reader, server):
    r = reader.post("/extract", json={"text": SENTENCE})
    assert r.status_code == 200 and r.json()["model_version"]
    assert reader.post("/extract_batch", json={"texts": [SENTENCE, SENTENCE]}).status_code == 200
    assert reader.get("/model").json()["ready"] is True
    assert "sciner_model_ready 1.0" in reader.get("/metrics").text
    r = reader.post("/ingest", json={"papers": [paper(1)]})
    assert r.status_code == 403 and "write" in r.json()["error"]
    assert 'scope="write"' in r.headers["www-authenticate"]
    assert "2099.sec-1" not in stored_ids(server)


def test_a_write_token_ingests_and_may_also_read(writer, server):
    r = writer.post("/ingest", json={"papers": [paper(2)]})
    assert r.status_code == 200 and r.json()["added"] == 1, r.text
    assert "2099.sec-2" in stored_ids(server)
    assert writer.post("/extract", json={"text": SENTENCE}).status_code == 200


# --- the internal batched route --------------------------------------------------------------
@pytest.mark.parametrize("client_name", ["anon", "writer"])
@pytest.mark.parametrize("body", [{"texts": [""]}, {"texts": ["x" * 50_000] * 4}, {"texts": [SENTENCE]}])
def test_the_internal_batched_route_is_not_reachable_over_http(request, client_name, body):
    client = request.getfixturevalue(client_name)
    assert client.post("/internal/infer", json=body).status_code == 404
    assert client.get("/internal/infer").status_code == 404


# --- cross-site writes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "headers", "content", "status"),
    [
        (10, {}, None, 415),  # no Content-Type (a browser's simple request)
        (11, {"content-type": "text/plain"}, None, 415),
        (12, {"content-type": "application/x-www-form-urlencoded"}, None, 415),
        (13, {"content-type": "multipart/form-data; boundary=b"}, None, 415),
        (14, {"content-type": "application/json", "host": "evil.example"}, None, 403),  # DNS rebinding
        (15, {"content-type": "application/json", "origin": "https://evil.example"}, None, 403),
        (16, {"content-type": "application/json", "origin": "null"}, None, 403),
        (17, {"content-type": "application/json", "origin": "http://127.0.0.1:1"}, None, 403),  # other port
    ],
)
def test_cross_site_writes_are_refused_and_store_nothing(writer, server, n, headers, content, status):
    body = content if content is not None else json.dumps({"papers": [paper(n)]}).encode()
    r = writer.post("/ingest", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]
    assert f"2099.sec-{n}" not in stored_ids(server)


def test_the_services_own_origin_may_write(writer, server):
    origin = server.url  # the Swagger UI served at / posts with this Origin
    r = writer.post("/ingest", json={"papers": [paper(20)]}, headers={"origin": origin})
    assert r.status_code == 200, r.text
    assert "2099.sec-20" in stored_ids(server)


# --- one convention for bad bodies -----------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "content", "status", "field"),
    [
        ("/extract", b'{"text": "unterminated ' + MARKER.encode(), 400, None),
        ("/extract", b"", 400, None),
        ("/extract", b"\xff\xfe not utf-8", 400, None),
        ("/extract", json.dumps({"text": 42, "note": MARKER}).encode(), 422, "text"),
        ("/extract", json.dumps({"note": MARKER}).encode(), 422, "text"),
        ("/extract", b'{"text": "' + MARKER.encode() + b' \\ud800 lone surrogate"}', 422, "text"),
        ("/extract", json.dumps({"text": "   "}).encode(), 422, None),
        ("/extract_batch", json.dumps({"texts": [MARKER, 7]}).encode(), 422, "texts[1]"),
        ("/extract_batch", json.dumps({"texts": MARKER}).encode(), 422, "texts"),
        ("/extract_batch", json.dumps({"texts": []}).encode(), 422, None),
        ("/extract", json.dumps({"text": MARKER * 3000}).encode(), 413, None),
    ],
)
def test_not_json_is_400_invalid_fields_are_422_naming_the_field(reader, path, content, status, field):
    r = reader.post(path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and MARKER not in r.text
    if field is not None:
        assert body["detail"][0]["field"] == field and body["detail"][0]["problem"]


def test_ingest_validation_failures_are_422(writer):
    for payload in ({"papers": []}, {"papers": "x"}, {}):
        r = writer.post("/ingest", json=payload)
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "papers", r.text


# --- long texts run apart from short ones ----------------------------------------------------
def long_text(chars: int) -> str:
    out, i = [], 0
    while sum(len(s) + 1 for s in out) < chars:
        out.append(f"Model {i} fine-tunes BERT on SQuAD and reaches 9{i % 10}.1 F1 with a learning rate of 3e-5 .")
        i += 1
    return " ".join(out)


def test_a_long_text_in_pieces_gets_the_same_entities_as_in_one_piece(reader, tiny_model_dir):
    text = long_text(5 * LONG_TEXT_CHARS)
    r = reader.post("/extract", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    predictor = Predictor.from_model_dir(tiny_model_dir, predictor_settings(Settings(intra_op_threads=1)))
    whole = predictor.predict_texts([text])[0]
    assert [(e["start"], e["end"], e["label"]) for e in body["entities"]] == [
        (e.start, e.end, e.label) for e in whole.entities
    ]
    assert body["windows"] == whole.windows and whole.entities
    for e in body["entities"]:
        assert text[e["start"] : e["end"]] == e["text"]
    batch = reader.post("/extract_batch", json={"texts": [SENTENCE, text, SENTENCE]}).json()
    assert [len(x["entities"]) for x in batch][1] == len(whole.entities)


def test_short_requests_are_not_held_behind_a_long_one(server):
    big = long_text(MAX_CHARS - 100)

    def long_call() -> float:
        with _client(server, READ_TOKEN) as c:
            t0 = time.monotonic()
            assert c.post("/extract", json={"text": big}).status_code == 200
            return time.monotonic() - t0

    with _client(server, READ_TOKEN) as c, cf.ThreadPoolExecutor(1) as pool:
        c.post("/extract", json={"text": SENTENCE})  # connection warm
        started = time.monotonic()
        future = pool.submit(long_call)
        time.sleep(0.3)
        shorts: list[float] = []
        while not future.done() and len(shorts) < 20:
            t0 = time.monotonic()
            assert c.post("/extract", json={"text": SENTENCE}).status_code == 200
            shorts.append(time.monotonic() - t0)
        long_s = future.result()
    assert time.monotonic() - started >= long_s
    assert len(shorts) >= 3, f"the long request took {long_s:.2f}s; only {len(shorts)} short ones ran meanwhile"
    assert max(shorts) < long_s / 3, (shorts, long_s)


# --- the log ---------------------------------------------------------------------------------
def test_the_server_log_holds_no_request_text_and_no_token(server, anon, reader):
    # one more of each kind of failure, so this test also stands alone
    anon.post("/extract", json={"text": SENTENCE})
    broken = b'{"text": "' + MARKER.encode() + b'"'
    reader.post("/extract", content=broken, headers={"content-type": "application/json"})
    reader.post("/extract", json={"text": 42, "note": MARKER})
    time.sleep(1)
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert MARKER not in log
    assert READ_TOKEN not in log and WRITE_TOKEN not in log
    assert "input_value" not in log and "Traceback" not in log
    rejected = [json.loads(m) for m in re.findall(r'(\{"event": "request_rejected".*\})', log)]
    assert {r["status"] for r in rejected} >= {400, 401, 403, 404, 415, 422}
    assert all(set(r) == {"event", "status", "method", "path", "reason"} for r in rejected)
    assert not re.search(r"ERROR.*request_rejected", log)
