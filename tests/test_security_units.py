"""The pure rules behind the service's security and fairness: token scopes, cross-site write
checks, the 400/422 convention, cutting long texts into sentence pieces, and CPU counting from
cgroup quotas. The same rules run against a real server in tests/test_security.py."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest

from sciner.cpus import cgroup_cpu_quota, combine, quota_from_cfs, quota_from_cpu_max
from sciner.settings import Settings
from service.auth import (
    Scope,
    TokenConfigError,
    TokenRing,
    authorize,
    bearer_token,
    new_token,
    parse_token,
    required_scope,
)
from service.csrf import host_allowed, origin_allowed, split_host, write_refusal
from service.ingest import IngestRequest
from service.pieces import Piece, assemble, cut_text, plan_chunks, sentence_starts
from service.schemas import ExtractBatchRequest, ExtractRequest
from service.validation import check_body, field_name

READ_TOKEN = "r" * 24
WRITE_TOKEN = "w-token-0123456789abcdef"


# --- tokens and scopes -----------------------------------------------------------------------
def ring() -> TokenRing:
    write_digest = "sha256:" + hashlib.sha256(WRITE_TOKEN.encode()).hexdigest()
    return TokenRing.from_lists([READ_TOKEN], [write_digest])


def test_a_token_configured_as_its_sha256_digest_matches_the_token():
    assert ring().scopes(WRITE_TOKEN) == {Scope.READ, Scope.WRITE}
    assert ring().scopes(READ_TOKEN) == {Scope.READ}
    assert ring().scopes("w-token-0123456789abcdeX") == frozenset()


def test_token_entries_are_checked_when_configured():
    with pytest.raises(TokenConfigError, match="64 hex"):
        parse_token("sha256:abc")
    with pytest.raises(TokenConfigError, match="at least 16"):
        parse_token("short")
    token, entry = new_token()
    assert parse_token(entry) == hashlib.sha256(token.encode()).digest() and len(token) >= 32


@pytest.mark.parametrize(
    ("method", "path", "metrics", "scope"),
    [
        ("POST", "/extract", False, Scope.READ),
        ("POST", "/extract_batch", False, Scope.READ),
        ("GET", "/model", False, Scope.READ),
        ("POST", "/ingest", False, Scope.WRITE),
        ("POST", "/some/future/route", False, Scope.WRITE),  # unknown writes need the write scope
        ("DELETE", "/model", False, Scope.WRITE),
        ("GET", "/livez", False, None),
        ("GET", "/readyz", False, None),
        ("GET", "/docs.json", False, None),
        ("GET", "/metrics", False, None),
        ("GET", "/metrics", True, Scope.READ),
        ("GET", "/unknown", False, Scope.READ),
    ],
)
def test_each_route_needs_its_scope(method, path, metrics, scope):
    assert required_scope(method, path, metrics) == scope


def test_authorize_answers_401_without_a_valid_token_and_403_without_the_scope():
    r = ring()
    assert authorize(r, None, None).status == 0
    assert authorize(r, Scope.READ, None).status == 401
    assert authorize(r, Scope.READ, "Basic dXNlcjpwdw==").status == 401
    assert authorize(r, Scope.READ, "Bearer nope-nope-nope-nope").status == 401
    assert authorize(r, Scope.READ, f"Bearer {READ_TOKEN}").status == 0
    assert authorize(r, Scope.WRITE, f"Bearer {READ_TOKEN}").status == 403
    assert authorize(r, Scope.WRITE, f"bearer {WRITE_TOKEN}").status == 0
    assert authorize(TokenRing(()), Scope.READ, f"Bearer {READ_TOKEN}").status == 401  # none configured
    assert bearer_token("Bearer   ") is None


def test_settings_take_comma_separated_token_lists(monkeypatch):
    monkeypatch.setenv("SCINER_API_READ_TOKENS", f" {READ_TOKEN} , sha256:{'a' * 64}")
    monkeypatch.setenv("SCINER_ALLOWED_HOSTS", "api.example.com,sciner-api:3000")
    s = Settings()
    assert s.api_read_tokens == [READ_TOKEN, f"sha256:{'a' * 64}"]
    assert s.allowed_hosts == ["api.example.com", "sciner-api:3000"]
    assert s.auth_enabled is True  # on unless turned off


# --- cross-site writes -----------------------------------------------------------------------
def test_hosts():
    assert split_host("[::1]:3000") == ("[::1]", "3000") and split_host("Example.COM") == ("example.com", None)
    allowed = ["localhost", "127.0.0.1", "[::1]", "api.example.com:443"]
    assert host_allowed("127.0.0.1:3000", allowed) and host_allowed("[::1]:8080", allowed)
    assert host_allowed("api.example.com:443", allowed) and not host_allowed("api.example.com:80", allowed)
    assert not host_allowed("evil.example:3000", allowed) and not host_allowed(None, allowed)
    assert host_allowed("anything", ["*"])


def test_origins():
    assert origin_allowed(None, "127.0.0.1:3000", [])  # curl, SDKs
    assert origin_allowed("http://127.0.0.1:3000", "127.0.0.1:3000", [])  # the service's own Swagger UI
    assert not origin_allowed("http://127.0.0.1:3001", "127.0.0.1:3000", [])
    assert not origin_allowed("https://evil.example", "127.0.0.1:3000", [])
    assert not origin_allowed("null", "127.0.0.1:3000", [])
    assert origin_allowed("https://app.example.com", "api.example.com", ["https://app.example.com"])
    assert origin_allowed("https://api.example.com", "api.example.com", [])  # default port 443 on both
    assert write_refusal("evil.example", None, ["localhost"], []) is not None
    assert write_refusal("localhost:3000", "http://evil.example", ["localhost"], []) is not None
    assert write_refusal("localhost:3000", None, ["localhost"], []) is None


# --- the 400/422 convention ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "body", "status", "field"),
    [
        (ExtractRequest, b'{"text": "ok"}', None, None),
        (ExtractRequest, b"", 400, None),
        (ExtractRequest, b'{"text": "unterminated', 400, None),
        (ExtractRequest, b"\xff\xfe not utf-8", 400, None),
        (ExtractRequest, b'{"text": NaN}', 422, "text"),  # pydantic's parser reads NaN as a number
        (ExtractRequest, b'{"text": 42}', 422, "text"),
        (ExtractRequest, b"{}", 422, "text"),
        (ExtractRequest, b'["text"]', 422, "body"),
        (ExtractRequest, b'{"text": "a \\ud800 b"}', 422, "text"),
        (ExtractBatchRequest, b'{"texts": ["fine", "\\udc00"]}', 422, "texts[1]"),
        (ExtractBatchRequest, b'{"texts": [1, "x"]}', 422, "texts[0]"),
        (IngestRequest, b'{"papers": []}', 422, "papers"),
    ],
)
def test_bodies_not_json_are_400_and_invalid_fields_are_422(model, body, status, field):
    rejection = check_body(body, model)
    if status is None:
        assert rejection is None
        return
    assert rejection is not None and rejection.status == status, rejection
    if field is not None:
        assert rejection.detail[0]["field"] == field and rejection.detail[0]["problem"]
        assert field in rejection.error


def test_rejections_never_quote_the_request():
    secret = "CONFIDENTIAL-ABSTRACT-TEXT"
    for body in (
        f'{{"text": 42, "other": "{secret}"}}',
        f'{{"texts": ["{secret}", 7]}}',
        f'{{"text": "{secret} \\ud800"}}',
        f'{{"text": "{secret}',
    ):
        rejection = check_body(body.encode(), ExtractBatchRequest if "texts" in body else ExtractRequest)
        assert rejection is not None and secret not in json.dumps(rejection.body())


def test_field_names():
    assert field_name(("papers", 0, "title")) == "papers[0].title" and field_name(()) == "body"


# --- long texts in pieces --------------------------------------------------------------------
LONG = " ".join(f"Sentence {i} uses BERT on SQuAD with 90.{i} F1 ." for i in range(200))


def test_pieces_cover_the_text_end_at_sentence_starts_and_stay_bounded():
    starts = set(sentence_starts(LONG))
    spans = cut_text(LONG, 500)
    assert spans[0][0] == 0 and spans[-1][1] == len(LONG)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(end in starts for _, end in spans[:-1])
    assert all(end - start <= 500 for start, end in spans) and len(spans) > 10


def test_a_sentence_longer_than_a_piece_stays_whole():
    text = "Short one . " + "word " * 400 + ". Last one ."
    spans = cut_text(text, 200)
    assert any(end - start > 200 for start, end in spans)
    assert "".join(text[s:e] for s, e in spans) == text


def test_chunks_pack_pieces_of_several_texts_in_order():
    texts = ["a b c .", LONG, "d e ."]
    chunks = plan_chunks(texts, 600)
    flat = [p for chunk in chunks for p in chunk]
    assert [p.text_index for p in flat] == sorted(p.text_index for p in flat)
    assert all(sum(p.size for p in chunk) <= 600 for chunk in chunks)
    for i, text in enumerate(texts):
        assert "".join(text[p.start : p.end] for p in flat if p.text_index == i) == text


def test_assemble_shifts_offsets_and_marks_failed_texts():
    from sciner.records import Entity

    e = Entity(start=0, end=4, text="BERT", label="MethodName", score=0.9)
    done = [(Piece(0, 10, 20), [e], 1), (Piece(0, 0, 10), [], 1), (Piece(1, 0, 5), None, 0)]
    out = assemble(2, done)
    assert [(x.start, x.end) for x in out[0].entities] == [(10, 14)] and out[0].windows == 2
    assert out[1].error is True


# --- CPUs from the cgroup quota --------------------------------------------------------------
def test_cpu_quota_parsing(tmp_path):
    assert quota_from_cpu_max("200000 100000\n") == 2.0
    assert quota_from_cpu_max("max 100000") is None
    assert quota_from_cfs("-1", "100000") is None and quota_from_cfs("150000", "100000") == 1.5
    assert combine(64, 2.0) == 2 and combine(64, 1.5) == 1 and combine(64, 0.5) == 1 and combine(4, None) == 4
    assert combine(2, 8.0) == 2
    (tmp_path / "cpu.max").write_text("300000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 3.0
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("400000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path / "v1") == 4.0
    assert cgroup_cpu_quota(tmp_path / "none") is None
