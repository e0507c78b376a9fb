"""The OpenAPI document lists only routes a client can call (service.openapi_doc), without a server."""

from __future__ import annotations

import asyncio
import json

from service.openapi_doc import PublicOpenAPI, public_document

DOC = {"openapi": "3.0.2", "paths": {"/extract": {"post": {}}, "/internal/infer": {"post": {}}, "/model": {}}}


def test_internal_paths_are_dropped_and_the_rest_kept():
    out = json.loads(public_document(json.dumps(DOC).encode()))
    assert list(out["paths"]) == ["/extract", "/model"] and out["openapi"] == "3.0.2"


def test_a_body_that_is_not_an_openapi_document_passes_unchanged():
    for body in (b"not json", b"[1, 2]", b'{"no": "paths"}'):
        assert public_document(body) == body


def _run(app: PublicOpenAPI, path: str, method: str = "GET") -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path, "method": method}, receive, send))
    return sent


async def _bentoml_like(scope, receive, send) -> None:
    body = json.dumps(DOC).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body[:20], "more_body": True})
    await send({"type": "http.response.body", "body": body[20:]})


def test_the_middleware_rewrites_docs_json_with_a_matching_content_length():
    start, body = _run(PublicOpenAPI(_bentoml_like), "/docs.json")
    assert "/internal/infer" not in json.loads(body["body"])["paths"]
    assert dict(start["headers"])[b"content-length"] == str(len(body["body"])).encode()
    assert dict(start["headers"])[b"content-type"] == b"application/json"


def test_other_routes_stream_through_untouched():
    messages = _run(PublicOpenAPI(_bentoml_like), "/extract", "POST")
    assert [m.get("more_body", False) for m in messages] == [False, True, False]
    assert b"/internal/infer" in messages[1]["body"] + messages[2]["body"]
