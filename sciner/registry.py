"""The MLflow model registry edge: register model folders, read and move aliases, fetch versions.

Every candidate is logged as a run (params, metrics, tags, review artifacts) plus a models-from-code
pyfunc whose artifact is the model folder (ONNX files, tokenizer, metadata), registered as a new version
of ``settings.registered_model_name``. The PyTorch checkpoint is not part of what serves: it goes to the
run's ``checkpoint`` artifact (``SCINER_REGISTER_CHECKPOINT``), where a later round finds it to average.
Aliases (``champion``, ``challenger``), not the deprecated stages, mark what serves.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sciner.model_dir import HF_DIR, METADATA_FILE
from sciner.settings import Settings

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(__file__).with_name("mlflow_model.py")
MODEL_ARTIFACT_NAME = "model"
CHECKPOINT_ARTIFACT = "checkpoint"  # the run's copy of the PyTorch checkpoint (hf/), for later soups


class RegistryError(RuntimeError):
    """The registry could not be reached or answered with an error."""


@dataclass
class RegisteredVersion:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    source: str = ""


def client(settings: Settings):  # noqa: ANN201 - MlflowClient, imported lazily
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}"
        for pkg in ("onnxruntime", "tokenizers", "numpy", "pydantic", "pydantic-settings", "seqeval", "mlflow")
    ]


def _model_folder_copy(model_dir: Path, tmp: Path) -> Path:
    """The model folder without the PyTorch checkpoint (kept locally; ONNX is what serves)."""
    dest = tmp / "model_dir"
    shutil.copytree(model_dir, dest, ignore=shutil.ignore_patterns(HF_DIR, ".*"))
    return dest


def register_model_dir(
    settings: Settings,
    model_dir: Path,
    *,
    run_name: str,
    params: dict | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    artifacts: dict[str, Path] | None = None,
    description: str = "",
) -> RegisteredVersion:
    """Log a run for ``model_dir`` and register it as a new model version (tags + description set)."""
    import mlflow
    from sciner import mlflow_card, quiet
    from sciner.mlflow_card import MODEL_DIR_ARTIFACT

    tags = {k: str(v) for k, v in (tags or {}).items()}
    try:
        client(settings)
        mlflow.set_experiment(settings.experiment_name)
        with mlflow.start_run(run_name=run_name) as run, tempfile.TemporaryDirectory() as tmp:
            if params:
                mlflow.log_params({k: _param(v) for k, v in params.items()})
            if metrics:
                mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            if tags:
                mlflow.set_tags(tags)
            checkpoint = Path(model_dir) / HF_DIR
            if settings.register_checkpoint and checkpoint.is_dir():
                mlflow.log_artifacts(str(checkpoint), artifact_path=CHECKPOINT_ARTIFACT)
            for dest, path in (artifacts or {}).items():
                if Path(path).is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=dest)
                else:
                    mlflow.log_artifact(str(path), artifact_path=dest or None)
            with quiet.mlflow_nags_dropped():
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT_NAME,
                    python_model=str(PYFUNC_CODE),
                    artifacts={MODEL_DIR_ARTIFACT: str(_model_folder_copy(Path(model_dir), Path(tmp)))},
                    pip_requirements=_pip_requirements(),
                    registered_model_name=settings.registered_model_name,
                    signature=mlflow_card.signature(),
                    input_example=mlflow_card.input_example(),
                )
            run_id = run.info.run_id
        version = str(info.registered_model_version)
        update_version(settings, version, tags=tags, description=description)
        describe_registered_model(settings)
    except RegistryError:
        raise
    except Exception as exc:  # MLflow raises many types for one meaning: the registry failed
        raise RegistryError(f"registering {model_dir} at {settings.mlflow_tracking_uri} failed: {exc}") from exc
    log.info("registered %s version %s (run %s)", settings.registered_model_name, version, run_id)
    return RegisteredVersion(
        settings.registered_model_name, version, run_id, tags, dict(metrics or {}), [], description
    )


def describe_registered_model(settings: Settings) -> None:
    """The registered model's description and tags (what it is, labels, how versions are promoted); written
    only when they differ, so the model page's history stays quiet."""
    from sciner import mlflow_card

    c = client(settings)
    name = settings.registered_model_name
    current = c.get_registered_model(name)
    text = mlflow_card.registered_model_description()
    if (current.description or "") != text:
        c.update_registered_model(name, description=text)
    for key, value in mlflow_card.registered_model_tags().items():
        if (current.tags or {}).get(key) != value:
            c.set_registered_model_tag(name, key, value)


def _param(value: object) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def update_version(
    settings: Settings, version: str, tags: dict[str, str] | None = None, description: str | None = None
) -> None:
    c = client(settings)
    name = settings.registered_model_name
    for key, value in (tags or {}).items():
        c.set_model_version_tag(name, version, key, str(value))
    if description is not None:
        c.update_model_version(name, version, description=description)


def get_version(settings: Settings, version: str) -> RegisteredVersion:
    c = client(settings)
    mv = c.get_model_version(settings.registered_model_name, str(version))
    return _to_registered(c, mv)


def search_versions(settings: Settings, tags: dict[str, str]) -> list[RegisteredVersion]:
    """Versions of the registered model whose tags have these exact values (with their run metrics)."""
    c = client(settings)
    clauses = [f"name='{_quote(settings.registered_model_name)}'"]
    clauses += [f"tags.{key}='{_quote(value)}'" for key, value in tags.items()]
    try:
        found = c.search_model_versions(" AND ".join(clauses))
    except Exception as exc:
        raise RegistryError(f"searching versions at {settings.mlflow_tracking_uri} failed: {exc}") from exc
    return [_to_registered(c, mv) for mv in found]


def _quote(value: str) -> str:
    return str(value).replace("'", "\\'")


def _to_registered(c: object, mv: object) -> RegisteredVersion:
    metrics: dict[str, float] = {}
    run_id = getattr(mv, "run_id", None)
    if run_id:
        try:
            metrics = dict(c.get_run(run_id).data.metrics)  # type: ignore[attr-defined]
        except Exception:
            metrics = {}
    return RegisteredVersion(
        name=mv.name,  # type: ignore[attr-defined]
        version=str(mv.version),  # type: ignore[attr-defined]
        run_id=run_id,
        tags=dict(mv.tags or {}),  # type: ignore[attr-defined]
        metrics=metrics,
        aliases=list(getattr(mv, "aliases", []) or []),
        description=mv.description or "",  # type: ignore[attr-defined]
        source=getattr(mv, "source", "") or "",
    )


def alias_version(settings: Settings, alias: str | None = None) -> RegisteredVersion | None:
    """The version an alias points to, or ``None`` if the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException, RestException

    alias = alias or settings.champion_alias
    c = client(settings)
    try:
        mv = c.get_model_version_by_alias(settings.registered_model_name, alias)
    except (RestException, MlflowException) as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise RegistryError(f"reading alias {alias!r} at {settings.mlflow_tracking_uri} failed: {exc}") from exc
    except Exception as exc:
        raise RegistryError(f"reading alias {alias!r} at {settings.mlflow_tracking_uri} failed: {exc}") from exc
    return _to_registered(c, mv)


def set_alias(settings: Settings, alias: str, version: str, kind: str = "sciner") -> None:
    """Point ``alias`` at ``version``; a champion move is also recorded in the champion history
    (:mod:`sciner.champion_history`, ``kind``: gate, bootstrap, manual, rollback, ...)."""
    from sciner import champion_history

    champion = alias == settings.champion_alias
    before = _alias_or_none(settings, alias) if champion else None
    try:
        client(settings).set_registered_model_alias(settings.registered_model_name, alias, str(version))
    except Exception as exc:
        raise RegistryError(
            f"moving alias {alias!r} to version {version} at {settings.mlflow_tracking_uri} failed: {exc}"
        ) from exc
    log.info("alias %s -> %s version %s", alias, settings.registered_model_name, version)
    if champion:
        champion_history.append(settings, before, str(version), kind)


def _alias_or_none(settings: Settings, alias: str) -> str | None:
    """The version ``alias`` points at now, ``None`` if none (or the registry did not say)."""
    try:
        return str(client(settings).get_model_version_by_alias(settings.registered_model_name, alias).version)
    except Exception:
        return None


def fetch_model_dir(settings: Settings, version: str, dest_root: Path) -> Path:
    """Download a registered version once into ``dest_root/<name>-v<version>`` and return its model folder."""
    import mlflow.artifacts

    client(settings)
    final = Path(dest_root) / f"{settings.registered_model_name}-v{version}"
    found = _find_model_folder(final) if final.exists() else None
    if found:
        return found

    def download(staging: Path) -> Path:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{settings.registered_model_name}/{version}", dst_path=str(staging)
        )
        if _find_model_folder(staging) is None:
            raise RegistryError(f"version {version} holds no sciner model folder")
        return staging

    _download_once(final, f"version {version}", download)
    folder = _find_model_folder(final)
    assert folder is not None
    return folder


def fetch_checkpoint(settings: Settings, version: str, dest_root: Path) -> Path | None:
    """Download the PyTorch checkpoint logged with a registered version once into
    ``dest_root/<name>-v<version>-checkpoint``; ``None`` if the version was registered without one."""
    import mlflow.artifacts

    c = client(settings)
    final = Path(dest_root) / f"{settings.registered_model_name}-v{version}-{CHECKPOINT_ARTIFACT}"
    if (final / "config.json").is_file():
        return final
    try:
        run_id = c.get_model_version(settings.registered_model_name, str(version)).run_id
        if not run_id or not any(f.path == CHECKPOINT_ARTIFACT for f in c.list_artifacts(run_id)):
            return None
    except Exception as exc:
        raise RegistryError(f"reading version {version}'s artifacts failed: {exc}") from exc

    def download(staging: Path) -> Path:
        got = Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CHECKPOINT_ARTIFACT, dst_path=str(staging))
        )
        if not (got / "config.json").is_file():
            raise RegistryError(f"version {version}'s {CHECKPOINT_ARTIFACT} artifact holds no config.json")
        return got

    _download_once(final, f"version {version}'s checkpoint", download)
    return final


def _download_once(final: Path, what: str, download: Callable[[Path], Path]) -> None:
    """``download(staging)`` into a fresh folder beside ``final``, then rename what it returns to ``final``:
    readers see a whole download or none, and a failed one leaves nothing behind."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        got = download(staging)
        shutil.rmtree(final, ignore_errors=True)
        got.rename(final)
    except RegistryError:
        raise
    except Exception as exc:  # MLflow raises many types for one meaning
        raise RegistryError(f"downloading {what} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _find_model_folder(root: Path) -> Path | None:
    hits = sorted(root.rglob(METADATA_FILE))
    return hits[0].parent if hits else None
