"""Cross-site write protection (pure logic): ``Host`` and ``Origin`` of a write request.

Browsers may send "simple" cross-site POSTs (form encodings, ``text/plain``) without asking the
server first; the guard already answers 415 to any body that is not JSON, which forces a CORS
preflight that this service never approves. Two holes remain for write routes, closed here:

* **DNS rebinding** — a page on ``evil.example`` whose name is re-pointed at 127.0.0.1 is
  same-origin with the service, so CORS does not apply; its requests still carry
  ``Host: evil.example``. The ``Host`` must be in ``SCINER_ALLOWED_HOSTS``.
* **Foreign pages** — a browser's request carries ``Origin``; it must be the service's own
  origin (same host and port as ``Host``) or in ``SCINER_ALLOWED_ORIGINS``. ``Origin: null``
  (sandboxed frames, files) is refused. Requests without ``Origin`` (curl, SDKs) pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

ANY = "*"


def split_host(host: str) -> tuple[str, str | None]:
    """``"name:port"`` → ``("name", "port")``; IPv6 literals keep their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return host, None
        name, rest = host[: end + 1], host[end + 1 :]
        return name, rest[1:] if rest.startswith(":") and rest[1:] else None
    name, sep, port = host.rpartition(":")
    if not sep:
        return host, None
    return name, port or None


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """Is this ``Host`` header in the allow-list ('name' = any port, 'name:port', '*')?"""
    if ANY in allowed:
        return True
    if not host:
        return False
    name, port = split_host(host)
    for entry in allowed:
        want_name, want_port = split_host(entry)
        if want_name == name and (want_port in (None, ANY) or want_port == port):
            return True
    return False


def _default_port(scheme: str) -> str | None:
    return {"http": "80", "https": "443"}.get(scheme)


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """No ``Origin`` → allowed; else the service's own origin or one in the allow-list."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    if ANY in allowed:
        return True
    if origin in {a.strip().lower().rstrip("/") for a in allowed}:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        return False  # includes "null"
    origin_port = str(parts.port) if parts.port else _default_port(parts.scheme)
    host_name, host_port = split_host(host)
    origin_name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return origin_name == host_name and origin_port == (host_port or _default_port(parts.scheme))


def write_refusal(host: str | None, origin: str | None, hosts: list[str], origins: list[str]) -> str | None:
    """Why a write request is refused (403), or None when it may proceed."""
    if not host_allowed(host, hosts):
        return "Host header not allowed for write requests (SCINER_ALLOWED_HOSTS)"
    if not origin_allowed(origin, host, origins):
        return "Origin not allowed for write requests (SCINER_ALLOWED_ORIGINS)"
    return None
