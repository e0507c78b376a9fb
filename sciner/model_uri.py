"""Where a model comes from: ``SCINER_MODEL_URI`` (or a ``--model`` option) parsed into a source.

* unset → ``models:/<registered_model_name>@<champion_alias>`` from the MLflow registry;
* ``models:/<name>@<alias>`` → that alias (the service polls it);
* ``models:/<name>/<version>`` → that version, pinned;
* anything else → a local model folder.

Shared by the service (:mod:`service.swap`) and the CLI (:mod:`training.model_ref`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sciner.settings import Settings


@dataclass(frozen=True, slots=True)
class ModelSource:
    kind: Literal["local", "registry"]
    uri: str
    path: Path | None = None
    name: str | None = None
    alias: str | None = None
    version: str | None = None  # a pinned registry version

    @property
    def polls(self) -> bool:
        """Only a registry alias can move; a folder or a pinned version is loaded once."""
        return self.kind == "registry" and self.alias is not None


def parse_model_uri(uri: str | None, settings: Settings) -> ModelSource:
    if not uri or not uri.strip():
        name, alias = settings.registered_model_name, settings.champion_alias
        return ModelSource("registry", f"models:/{name}@{alias}", name=name, alias=alias)
    uri = uri.strip()
    if uri.startswith("models:/"):
        rest = uri.removeprefix("models:/").strip("/")
        if "@" in rest:
            name, alias = rest.split("@", 1)
            if name and alias and "/" not in name:
                return ModelSource("registry", uri, name=name, alias=alias)
        elif "/" in rest:
            name, version = rest.rsplit("/", 1)
            if name and version.isdigit():
                return ModelSource("registry", uri, name=name, version=version)
        raise ValueError(f"model URI {uri!r} is neither models:/<name>@<alias> nor models:/<name>/<version>")
    path = Path(uri.removeprefix("file://")).expanduser()
    return ModelSource("local", uri, path=path, name=path.name)
