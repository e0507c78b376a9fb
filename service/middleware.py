"""A small ASGI guard in front of the BentoML routes.

* API routes accept JSON only: another ``Content-Type`` gets 415 (BentoML would otherwise try its
  multipart/pickle decoders on it); a body larger than any acceptable request gets 413 before it
  is read into memory.
* ``GET /readyz`` answers 503 *with the reason* (no model yet, last load error, GPU fallback)
  when the service is not ready; when ready it passes through to BentoML's own ``/readyz``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPES = ("application/json",)


def _not_ready_reason() -> str | None:
    import bentoml

    try:
        svc = bentoml.get_current_service()
    except Exception:
        return "service is starting"
    holder = getattr(svc, "holder", None)
    if holder is None:
        return None
    ready, reason = holder.readiness()
    return None if ready else reason


def media_type_ok(content_type: str | None) -> bool:
    """JSON (``application/json``, ``...+json``, any parameters) or no header at all."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        api_paths: tuple[str, ...] = (),
        max_body_bytes: int = 1 << 20,
        readyz_path: str = "/readyz",
        not_ready_reason: Callable[[], str | None] = _not_ready_reason,
    ) -> None:
        self.app = app
        self.api_paths = frozenset(api_paths)
        self.max_body_bytes = max_body_bytes
        self.readyz_path = readyz_path
        self.not_ready_reason = not_ready_reason

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == self.readyz_path and scope.get("method") in ("GET", "HEAD"):
            reason = self.not_ready_reason()
            if reason:
                await _respond(send, 503, f"not ready: {reason}\n".encode(), b"text/plain; charset=utf-8")
                return
        elif path in self.api_paths and scope.get("method") == "POST":
            headers = _headers(scope)
            if not media_type_ok(headers.get("content-type")):
                await _json_error(
                    send, 415, f"unsupported Content-Type {headers.get('content-type')!r}; send application/json"
                )
                return
            length = headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    await _json_error(send, 400, "invalid Content-Length")
                    return
                if int(length) > self.max_body_bytes:
                    await _json_error(send, 413, f"request body of {length} bytes; the limit is {self.max_body_bytes}")
                    return
            else:  # chunked: read it here, bounded, then replay it
                body, too_big = await _read_bounded(receive, self.max_body_bytes)
                if too_big:
                    await _json_error(send, 413, f"request body over the limit of {self.max_body_bytes} bytes")
                    return
                receive = _replay(body, receive)
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _read_bounded(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _json_error(send: Send, status: int, message: str) -> None:
    await _respond(send, status, json.dumps({"error": message}).encode(), b"application/json")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
