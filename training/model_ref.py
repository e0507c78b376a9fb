"""The model a CLI command works on: a model folder, a registry URI, or (none given) the serving model.

``sciner predict`` / ``sciner evaluate`` take ``var/models/local`` (a folder), ``models:/sciner@champion``
(an alias, read now), ``models:/sciner/3`` (a pinned version), or nothing: then what the service serves,
``SCINER_MODEL_URI`` or by default ``models:/<SCINER_REGISTERED_MODEL_NAME>@<SCINER_CHAMPION_ALIAS>``.
A registry version is downloaded once under ``<SCINER_HOME>/cache/registry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sciner.settings import Settings


class ModelRefError(ValueError):
    """The reference names no usable model; the message says why and what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    folder: Path
    label: str  # what to call it in output: the folder, or "sciner/v3"


def resolve_model(ref: str | None, settings: Settings) -> ResolvedModel:
    from sciner.model_uri import parse_model_uri

    try:
        source = parse_model_uri(ref if ref is not None else settings.model_uri, settings)
    except ValueError as exc:
        raise ModelRefError(str(exc)) from None
    if source.kind == "local":
        assert source.path is not None
        return ResolvedModel(source.path, str(source.path))
    return _from_registry(
        settings.model_copy(update={"registered_model_name": source.name}), source.uri, source.alias, source.version
    )


def _from_registry(settings: Settings, uri: str, alias: str | None, version: str | None) -> ResolvedModel:
    from sciner import registry
    from training.aliases import check_registry
    from training.errors import RoundError

    try:
        check_registry(settings)  # fail in seconds, not after MLflow's retries
    except RoundError as exc:
        raise ModelRefError(f"{uri}: {exc} (`make run` starts it; a model folder works without it)") from None
    try:
        if alias is not None:
            found = registry.alias_version(settings, alias)
            if found is None:
                raise ModelRefError(
                    f"{uri}: no such alias at {settings.mlflow_tracking_uri} (start the stack with `make run`, "
                    "or run `sciner bootstrap`; a model folder works too)"
                )
            version = found.version
        assert version is not None
        folder = registry.fetch_model_dir(settings, version, settings.home / "cache" / "registry")
    except registry.RegistryError as exc:
        raise ModelRefError(f"{uri}: {exc} (is MLflow running? `make run` starts it)") from None
    return ResolvedModel(folder, f"{settings.registered_model_name}/v{version}")
