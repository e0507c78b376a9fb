"""The ASGI guard in front of the BentoML routes. In order:

1. ``/internal/...`` (the adaptive-batched ``infer`` method's route) answers 404: it is called
   in-process only, never over HTTP.
2. ``GET /readyz`` answers 503 *with the reason* (no model yet, last load error, GPU fallback)
   when the service is not ready; when ready it passes through to BentoML's own ``/readyz``.
3. Bearer tokens (:mod:`service.auth`) when ``SCINER_AUTH_ENABLED``: 401 without a valid token,
   403 with a token that lacks the route's scope. Probes and the OpenAPI document stay open.
4. A request with a body must be JSON (``Content-Type: application/json``), else 415 — BentoML
   would otherwise try its multipart/pickle decoders, and browsers can send form encodings and
   ``text/plain`` cross-site without a CORS preflight.
5. Write requests (anything but ``GET`` and the read-only ``POST /extract*``) must come with an
   allowed ``Host`` and, from a browser, an allowed ``Origin`` (:mod:`service.csrf`), else 403.
6. A body larger than any acceptable request gets 413 before it is read into memory.
7. The body of an API route is checked against the route's pydantic model
   (:mod:`service.validation`): 400 if it is not JSON, 422 naming the field otherwise.

Every refusal is one INFO log line (``request_rejected``: status, method, path, reason) without
any request content or token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from pydantic import BaseModel

from sciner.settings import Settings
from service.auth import READ_POSTS, Scope, TokenRing, authorize, required_scope
from service.csrf import write_refusal
from service.logs import log_event
from service.validation import check_body

Scope_ = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]

JSON_TYPES = ("application/json",)
INTERNAL_PREFIX = "/internal/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = logging.getLogger("sciner.service.guard")


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
    """JSON: ``application/json`` or ``application/...+json``, any parameters. A missing header is not."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class GuardConfig:
    """What the guard enforces; built from settings once per worker."""

    def __init__(
        self,
        *,
        auth_enabled: bool = False,
        read_tokens: list[str] | None = None,
        write_tokens: list[str] | None = None,
        protect_metrics: bool = False,
        allowed_hosts: list[str] | None = None,
        allowed_origins: list[str] | None = None,
    ) -> None:
        self.auth_enabled = auth_enabled
        self.ring = TokenRing.from_lists(read_tokens or [], write_tokens or [])  # raises on a malformed entry
        self.protect_metrics = protect_metrics
        self.allowed_hosts = list(allowed_hosts if allowed_hosts is not None else ["*"])
        self.allowed_origins = list(allowed_origins or [])

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardConfig:
        return cls(
            auth_enabled=settings.auth_enabled,
            read_tokens=settings.api_read_tokens,
            write_tokens=settings.api_write_tokens,
            protect_metrics=settings.auth_metrics,
            allowed_hosts=settings.allowed_hosts,
            allowed_origins=settings.allowed_origins,
        )


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        body_models: Mapping[str, type[BaseModel]] | None = None,
        max_body_bytes: int = 1 << 20,
        config: GuardConfig | None = None,
        readyz_path: str = "/readyz",
        not_ready_reason: Callable[[], str | None] = _not_ready_reason,
    ) -> None:
        self.app = app
        self.body_models = dict(body_models or {})
        self.max_body_bytes = max_body_bytes
        self.config = config or GuardConfig()
        self.readyz_path = readyz_path
        self.not_ready_reason = not_ready_reason
        if self.config.auth_enabled:
            level = logging.INFO if len(self.config.ring) else logging.WARNING
            log_event(log, "api_auth", level=level, enabled=True, tokens=len(self.config.ring))
        else:
            log_event(log, "api_auth", enabled=False)

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET").upper()
        if path.startswith(INTERNAL_PREFIX):
            await _refuse(send, 404, "not found", method, path, "internal route")
            return
        if path == self.readyz_path and method in ("GET", "HEAD"):
            reason = self.not_ready_reason()
            if reason:
                await _respond(send, 503, f"not ready: {reason}\n".encode(), b"text/plain; charset=utf-8")
                return
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self.config.auth_enabled:
            needed = required_scope(method, path, self.config.protect_metrics)
            decision = authorize(self.config.ring, needed, headers.get("authorization"))
            if decision.status:
                await _refuse(
                    send, decision.status, decision.message, method, path, "authentication",
                    extra_headers=[(b"www-authenticate", _challenge(decision.status, decision.scope))],
                )  # fmt: skip
                return
        if method not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        model = self.body_models.get(path) if method == "POST" else None
        length = headers.get("content-length")
        has_body = model is not None or "transfer-encoding" in headers or (length not in (None, "0"))
        if has_body and not media_type_ok(headers.get("content-type")):
            given = headers.get("content-type")
            message = (
                f"unsupported Content-Type {given!r}; send application/json"
                if given
                else ("missing Content-Type; send application/json")
            )
            await _refuse(send, 415, message, method, path, "content type")
            return
        if not (method == "POST" and path in READ_POSTS):
            refusal = write_refusal(
                headers.get("host"), headers.get("origin"), self.config.allowed_hosts, self.config.allowed_origins
            )
            if refusal:
                await _refuse(send, 403, refusal, method, path, "cross-site write")
                return
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, "invalid Content-Length", method, path, "content length")
                return
            if int(length) > self.max_body_bytes:
                message = f"request body of {length} bytes; the limit is {self.max_body_bytes}"
                await _refuse(send, 413, message, method, path, "body size")
                return
        if model is None and length is not None:
            await self.app(scope, receive, send)
            return
        body, too_big = await _read_bounded(receive, self.max_body_bytes)
        if too_big:
            message = f"request body over the limit of {self.max_body_bytes} bytes"
            await _refuse(send, 413, message, method, path, "body size")
            return
        if model is not None:
            rejection = check_body(body, model)
            if rejection is not None:
                await _refuse(send, rejection.status, rejection.body(), method, path, "validation")
                return
        await self.app(scope, _replay(body, receive), send)


def _challenge(status: int, scope: Scope | None) -> bytes:
    if status == 403 and scope is not None:
        return f'Bearer realm="sciner", error="insufficient_scope", scope="{scope.value}"'.encode()
    return b'Bearer realm="sciner"'


def _headers(scope: Scope_) -> dict[str, str]:
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


async def _refuse(
    send: Send,
    status: int,
    message: str | dict[str, Any],
    method: str,
    path: str,
    reason: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer a client error as JSON and log it at INFO (status, route, reason: never the content)."""
    payload = message if isinstance(message, dict) else {"error": message}
    log_event(log, "request_rejected", status=status, method=method, path=path, reason=reason)
    await _respond(send, status, json.dumps(payload).encode(), b"application/json", extra_headers)


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
