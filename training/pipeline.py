"""Train -> export -> evaluate the exported model: the steps every new model goes through."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from sciner.io.jsonl import jsonl_text
from sciner.model_dir import read_metadata, write_metadata
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings
from training.calibrate import bias_grid, calibrate_o_bias
from training.distill import SoftTargets, teacher_dirs
from training.eval_split import EvalSplit
from training.evaluate import evaluate_logits
from training.export import export_onnx
from training.held_out import HELD_OUT_KEY, TEACHERS_KEY, held_out_record
from training.int8_recipe import smoothing_for
from training.int8_scales import scale_calibration_for
from training.trainer import train_model

log = logging.getLogger(__name__)


def data_fingerprint(sentences: list[Sentence], source: Path | None) -> dict:
    """Content hash of a data set as it was used (the sha256 of its canonical JSONL, the bytes ``write_jsonl``
    writes), plus where it came from. Hashed in memory: trainings side by side share no file."""
    digest = hashlib.sha256(jsonl_text(sentences).encode("utf-8")).hexdigest()
    return {"source": str(source) if source else None, "sha256": digest, "sentences": len(sentences)}


def train_and_export(
    train: list[Sentence],
    dev: list[Sentence] | None,
    out: Path,
    settings: Settings,
    sources: dict[str, Path | None] | None = None,
    export: bool = True,
    progress: bool = True,
    soft_targets: SoftTargets | None = None,
    finish: bool = True,
    held_out: EvalSplit | None = None,
) -> dict:
    """Fine-tune, export ONNX, fit the O-logit decoding bias on dev (served variant), evaluate it on dev;
    record it all in ``sciner.json``. ``finish=False`` stops after training (the PyTorch checkpoint and its
    metadata): the caller changes the model first (a round's soup) and then calls :func:`export_and_score`.
    ``held_out``: the gate's evaluation split the caller left out of ``train``, recorded with what each
    teacher left out (:mod:`training.held_out`; ``sciner challenge`` checks it)."""
    sources = sources or {}
    out.parent.mkdir(parents=True, exist_ok=True)
    data_info = {"train": data_fingerprint(train, sources.get("train"))}
    if dev:
        data_info["dev"] = data_fingerprint(dev, sources.get("dev"))
    if soft_targets is not None:
        data_info["soft_targets"] = {
            "sha256": soft_targets.sha256,
            "teacher": soft_targets.teacher,
            "sentences": len(soft_targets),
            TEACHERS_KEY: {t: teacher_held_out(Path(t)) for t in teacher_dirs(soft_targets)},
        }
    if held_out is not None:
        data_info[HELD_OUT_KEY] = held_out_record(held_out)
    result = train_model(train, dev, out, settings, data_info=data_info, progress=progress, soft_targets=soft_targets)
    summary: dict = {"model_dir": str(out), "best_epoch": result.best_epoch, "train_seconds": result.seconds}
    if not finish:
        return summary
    return {**summary, **export_and_score(out, dev, settings, export=export, train=train)}


def teacher_held_out(teacher: Path) -> dict | None:
    """The evaluation split a teacher folder recorded leaving out (None: none recorded, or no folder)."""
    try:
        return read_metadata(teacher).data.get(HELD_OUT_KEY)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def export_and_score(
    out: Path,
    dev: list[Sentence] | None,
    settings: Settings,
    export: bool = True,
    train: list[Sentence] | None = None,
) -> dict:
    """Export ``out`` to ONNX, fit its O-logit decoding bias on dev (served variant) and evaluate it there;
    record both in ``sciner.json``. The steps after training that every new model folder goes through.
    The int8 model's calibration reads the text of ``train`` (what the model was trained on) when given, else
    the gold train file's."""
    summary: dict = {}
    if export:
        smoothing = smoothing_for(settings, train)
        # the same calibration text for both, read once (its evenly spaced sentences come back unchanged)
        scales = scale_calibration_for(settings, train or (smoothing.sentences if smoothing else None))
        summary["export"] = export_onnx(
            out, fp32_ffn_output=settings.int8_fp32_ffn_output, smoothing=smoothing, scales=scales
        )
        calibrated = smoothing.sentences if smoothing else scales.sentences if scales else None
        meta = read_metadata(out)
        meta.extra["int8"] = {  # how onnx/int8 was quantized
            "fp32_ffn_output": settings.int8_fp32_ffn_output,
            "smooth_alpha": smoothing.alpha if smoothing else 0.0,
            "activation_scales": "calibrated" if scales else "dynamic",
            "calibration": {
                "source": "training data" if train else str(settings.gold_train_path),
                "sentences": len(calibrated),
            }
            if calibrated is not None
            else None,
        }
        write_metadata(out, meta)
    if dev:
        predictor = Predictor.from_model_dir(out, settings)
        meta = read_metadata(out)
        logits = predictor.record_logits(dev)  # one pass over dev: the calibration and the evaluation share it
        if settings.calibrate_o_bias:
            grid = bias_grid(settings.o_bias_min, settings.o_bias_max, settings.o_bias_step)
            calibration = calibrate_o_bias(predictor, dev, grid, logits, settings.o_bias_rule)
            meta.decoding = calibration.as_metadata()
            predictor.o_bias = calibration.o_bias
            summary["o_bias"] = calibration.o_bias
        evaluation, _ = evaluate_logits(predictor, logits, dev)
        # what the dev figures were decoded with besides the bias: the service decodes as its settings say
        rule = predictor.propagation
        meta.decoding["name_propagation"] = None if rule is None else rule.as_metadata()
        meta.metrics["dev"] = evaluation.as_flat_metrics()
        meta.metrics["dev_engine"] = predictor.backend.name
        write_metadata(out, meta)
        summary["dev"] = evaluation.as_flat_metrics()
        log.info("dev micro-F1 %.4f (%s)\n%s", evaluation.micro_f1, predictor.backend.name, evaluation.table())
    return summary
