"""``GET /docs.json`` without the in-process route.

BentoML lists every ``@bentoml.api`` method in its OpenAPI document, the adaptive-batched ``infer``
at ``/internal/infer`` too, which the request guard answers 404 over HTTP. This ASGI middleware
drops the internal paths from the document, so people, API clients and generated SDKs see only
what they can call. Everything else passes through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.middleware import INTERNAL_PREFIX

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def public_document(body: bytes, hidden_prefix: str = INTERNAL_PREFIX) -> bytes:
    """The OpenAPI JSON without the paths under ``hidden_prefix``; a body that is not such a document as it is."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return body
    doc["paths"] = {path: item for path, item in doc["paths"].items() if not path.startswith(hidden_prefix)}
    return json.dumps(doc).encode()


class PublicOpenAPI:
    """ASGI middleware: rewrites the 200 answer of ``GET <path>`` through :func:`public_document`."""

    def __init__(self, app: ASGIApp, path: str = "/docs.json", hidden_prefix: str = INTERNAL_PREFIX) -> None:
        self.app, self.path, self.hidden_prefix = app, path, hidden_prefix

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path or scope.get("method", "GET") != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message.get("status") == 200:
                start = message  # held back until the whole body is known
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = public_document(b"".join(chunks), self.hidden_prefix)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)
