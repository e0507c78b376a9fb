"""Who auto-annotates a round: the champion (the paper's loop) or a fixed teacher model folder
(``SCINER_ANNOTATOR_MODEL``, issue 14: the same loop with a stronger annotator, such as the MPNet
teacher), and the name the version's lineage records for it.

Either way the annotator runs through the shared :class:`~sciner.predictor.Predictor`, with its
own thresholds calibrated on gold dev, so a teacher changes who labels the papers and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sciner.model_dir import METADATA_FILE, onnx_path, sha256_file
from sciner.predictor import Predictor
from sciner.settings import Settings
from training.errors import RoundError


@dataclass(frozen=True)
class Annotator:
    predictor: Predictor
    version: str  # the lineage's annotator_version: "7" (champion v7) or "teacher:<folder>@<sha12>"
    description: str  # for people: "champion v7" or "teacher <folder> (sha256 <12 hex>)"


def teacher_fingerprint(model_dir: Path, variant: str) -> str:
    """sha256 of the weights the teacher serves with (its ONNX file; its metadata when it has none)."""
    path = onnx_path(model_dir, variant)
    return sha256_file(path if path.is_file() else model_dir / METADATA_FILE)


def champion_annotator(predictor: Predictor, champion_version: str) -> Annotator:
    return Annotator(predictor, champion_version, f"champion v{champion_version}")


def teacher_annotator(model_dir: Path, settings: Settings) -> Annotator:
    """The teacher in ``model_dir`` (``SCINER_ANNOTATOR_MODEL``); a clear error, before any training, when
    the folder is not a model."""
    if not (model_dir / METADATA_FILE).is_file():
        raise RoundError(
            f"SCINER_ANNOTATOR_MODEL={model_dir} is not a sciner model folder ({METADATA_FILE} missing): "
            "train the teacher first (docs/deploy.md, 'Training the teacher'), or unset it to annotate "
            "with the champion"
        )
    digest = teacher_fingerprint(model_dir, settings.onnx_variant)[:12]
    return Annotator(
        Predictor.from_model_dir(model_dir, settings),
        f"teacher:{model_dir.name}@{digest}",
        f"teacher {model_dir.name} (sha256 {digest})",
    )
