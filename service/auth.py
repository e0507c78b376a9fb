"""Bearer tokens with scopes (pure logic; the ASGI guard in :mod:`service.middleware` applies it).

Scopes: ``read`` (``POST /extract``, ``POST /extract_batch``, ``GET /model``, ``/metrics`` when
``SCINER_AUTH_METRICS``) and ``write`` (``POST /ingest`` and any other request that may change
state); a write token may also read. ``/livez``, ``/readyz`` and the OpenAPI document stay open.

Tokens come from settings (``SCINER_API_READ_TOKENS``, ``SCINER_API_WRITE_TOKENS``; on Kubernetes
from the Secret ``sciner-api-tokens``) as ``sha256:<hex digest>`` — only the hash is stored — or as
the token itself. Either way only SHA-256 digests are kept in memory, and a presented token is
compared with every known digest by :func:`hmac.compare_digest` (constant time, no early exit).

    python -m service.auth        # a new random token and the digest to configure
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

DIGEST_PREFIX = "sha256:"
MIN_TOKEN_CHARS = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"


# Paths any client may GET without a token: probes and the API description (Swagger UI at /).
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/docs.json", "/docs", "/", "/favicon.ico"})
OPEN_PREFIXES = ("/static_content/",)
READ_POSTS = frozenset({"/extract", "/extract_batch"})
METRICS_PATH = "/metrics"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenConfigError(ValueError):
    """A configured token is neither a sha256 digest nor long enough to be a secret."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_token(entry: str) -> bytes:
    """The SHA-256 digest a configured entry stands for: ``sha256:<64 hex>`` or a plain token."""
    entry = entry.strip()
    if entry.lower().startswith(DIGEST_PREFIX):
        hexdigest = entry[len(DIGEST_PREFIX) :].strip().lower()
        if not _HEX64.fullmatch(hexdigest):
            raise TokenConfigError("a 'sha256:' token entry must be followed by 64 hex digits")
        return bytes.fromhex(hexdigest)
    if len(entry) < MIN_TOKEN_CHARS:
        raise TokenConfigError(
            f"a plain token must have at least {MIN_TOKEN_CHARS} characters (better: configure 'sha256:<digest>')"
        )
    return digest(entry)


@dataclass(frozen=True)
class TokenRing:
    """Digests of the configured tokens, each with its scopes."""

    entries: tuple[tuple[bytes, frozenset[Scope]], ...]

    @classmethod
    def from_lists(cls, read: list[str], write: list[str]) -> TokenRing:
        entries = [(parse_token(t), frozenset({Scope.READ})) for t in read]
        entries += [(parse_token(t), frozenset({Scope.READ, Scope.WRITE})) for t in write]
        return cls(tuple(entries))

    def __len__(self) -> int:
        return len(self.entries)

    def scopes(self, token: str) -> frozenset[Scope]:
        """Scopes of ``token`` (empty when unknown). Every digest is compared, match or not."""
        presented = digest(token)
        granted: set[Scope] = set()
        for known, scopes in self.entries:
            if hmac.compare_digest(presented, known):
                granted |= scopes
        return frozenset(granted)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when absent or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def required_scope(method: str, path: str, protect_metrics: bool) -> Scope | None:
    """The scope a request needs; None for open routes. Unknown routes need a token too."""
    if method.upper() in SAFE_METHODS:
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
        if path == METRICS_PATH:
            return Scope.READ if protect_metrics else None
        return Scope.READ
    return Scope.READ if path in READ_POSTS else Scope.WRITE


@dataclass(frozen=True)
class Decision:
    """Outcome of the token check: ``status`` 0 = allowed, else 401 or 403 with a message."""

    status: int = 0
    message: str = ""
    scope: Scope | None = None


def authorize(ring: TokenRing, needed: Scope | None, authorization: str | None) -> Decision:
    if needed is None:
        return Decision()
    token = bearer_token(authorization)
    if token is None:
        return Decision(401, "authentication required: send 'Authorization: Bearer <token>'", needed)
    granted = ring.scopes(token)
    if not granted:
        return Decision(401, "invalid token", needed)
    if needed not in granted:
        return Decision(403, f"this token lacks the {needed.value!r} scope", needed)
    return Decision(scope=needed)


def new_token() -> tuple[str, str]:
    """A fresh random token and the ``sha256:`` entry to configure for it."""
    token = secrets.token_urlsafe(32)
    return token, DIGEST_PREFIX + hashlib.sha256(token.encode()).hexdigest()


if __name__ == "__main__":
    token, entry = new_token()
    print(f"token (give to the client):   {token}")
    print(f"entry (SCINER_API_*_TOKENS):  {entry}")
