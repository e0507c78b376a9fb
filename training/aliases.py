"""Alias moves by hand: ``sciner promote`` and ``sciner rollback``, plus the registry health check.

Import-light on purpose: a command that moves one alias must not load seqeval/scikit-learn, the paper
store or the trainer (that made ``sciner promote`` take 7-8 s while the registry answered in
milliseconds). Only the registry edge (MLflow's client, imported on first use) is needed.

A manual promotion records who and why on the version (:mod:`sciner.gating`), which is what lets the
service serve a version the gate did not promote.
"""

from __future__ import annotations

import getpass
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sciner import registry
from sciner.gating import CHAMPION_PREVIOUS, PROMOTED, ROLLED_BACK_AT, manual_promotion_tags, serve_verdict
from sciner.settings import Settings
from training.errors import RoundError

log = logging.getLogger("sciner.rounds")
T = TypeVar("T")


@dataclass
class AliasMove:
    alias: str
    before: str | None
    after: str


def check_registry(settings: Settings, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when the MLflow tracking server does not answer."""
    uri = settings.mlflow_tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            if resp.status != 200:
                raise RoundError(f"MLflow tracking server {uri} is unhealthy (HTTP {resp.status})")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RoundError(f"MLflow tracking server {uri} is unreachable ({reason}); nothing was changed") from exc


def registry_call(what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    try:
        return fn(*args, **kwargs)
    except RoundError:
        raise
    except Exception as exc:
        raise RoundError(f"{what} failed: {exc}") from exc


def champion_version(settings: Settings) -> registry.RegisteredVersion | None:
    return registry_call("reading the champion alias", registry.alias_version, settings, settings.champion_alias)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_user() -> str:
    """Who runs the command (the login; `sciner promote --by` overrides it)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return os.environ.get("USER") or f"uid {os.getuid()}"


def promote_version(settings: Settings, version: str, reason: str = "", by: str | None = None) -> AliasMove:
    """Point ``champion`` at ``version`` by hand; the service follows on its next poll.

    Records who (``by``, default the login) and why on the version. A version the gate did not promote
    needs a reason: without one the service would refuse to serve it, so nothing is moved.
    """
    check_registry(settings)
    target = registry_call(f"reading version {version}", registry.get_version, settings, str(version))
    who = (by or current_user()).strip()
    why = reason.strip()
    if target.tags.get("decision") != PROMOTED and not why:
        said = target.tags.get("decision") or "no decision"
        raise RoundError(
            f"v{target.version} was not promoted by the gate ({said}): say why with --reason "
            "(recorded on the version; the service serves it only then)"
        )
    before = champion_version(settings)
    moving = before is None or before.version != target.version
    if not moving and serve_verdict(target.version, target.tags).allowed:
        return AliasMove(settings.champion_alias, target.version, target.version)
    # record first, then move: the service checks the record when it sees the alias move (and when the
    # alias already points here but the service refused the version, the record is what it waits for)
    previous = before.version if before is not None and moving else target.tags.get(CHAMPION_PREVIOUS)
    from training.verdict import manual_description

    when, why = now(), why or "re-promoted a gate-promoted version"
    tags = manual_promotion_tags(who, why, when, previous)
    registry_call(
        "tagging the version",
        registry.update_version,
        settings,
        target.version,
        tags=tags,
        description=manual_description(who, why, when, target.description),
    )
    if moving:
        registry_call(
            "setting the champion alias",
            registry.set_alias,
            settings,
            settings.champion_alias,
            target.version,
            "manual",
        )
    log.info("champion v%s -> v%s (manual, by %s)", before.version if before else None, target.version, who)
    return AliasMove(settings.champion_alias, before.version if before else None, target.version)


def rollback(settings: Settings) -> AliasMove:
    """Move ``champion`` back to the version that served before it: from the champion history
    (:mod:`sciner.champion_history`, which also sees moves made in the MLflow UI or REST API), else the
    tag ``champion_previous``, else ``parent_version``."""
    from sciner import champion_history

    check_registry(settings)
    current = champion_version(settings)
    if current is None:
        raise RoundError("no champion to roll back")
    target = (
        champion_history.rollback_target(champion_history.read(settings), current.version)
        or current.tags.get(CHAMPION_PREVIOUS)
        or current.tags.get("parent_version")
    )
    if not target:
        raise RoundError(f"champion v{current.version} records no previous champion to roll back to")
    registry_call(f"reading version {target}", registry.get_version, settings, target)
    registry_call(
        "setting the champion alias",
        registry.set_alias,
        settings,
        settings.champion_alias,
        target,
        champion_history.ROLLBACK,
    )
    registry_call(
        "tagging the version",
        registry.update_version,
        settings,
        current.version,
        tags={ROLLED_BACK_AT: now(), "rolled_back_to": target},
    )
    log.info("champion v%s -> v%s (rollback)", current.version, target)
    return AliasMove(settings.champion_alias, current.version, target)
