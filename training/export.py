"""ONNX export of a trained model folder.

1. Optimum exports the HF checkpoint to ONNX; Optimum's ORTOptimizer applies the ONNX Runtime
   transformer fusions (Attention, BiasGelu; exact GELU) -> ``onnx/fp32``. SkipLayerNormalization
   is left unfused: ONNX Runtime's CPU kernel for it took ~77 us per call on a 27-piece sentence
   against ~24 us for Add + LayerNormalization, a quarter of the int8 model's time; unfused, the
   int8 model runs 1.34x faster at one thread with the same predictions (bench/onnx_graph.py,
   docs/benchmarks.md "ONNX graph"). ``sciner.backends`` keeps ONNX Runtime from re-fusing it on
   CPU (CUDA sessions fuse it).
2. The *fused* graph is quantized dynamically to int8, per channel (per-tensor lost 1.7 F1 points
   in calibration) -> ``onnx/int8`` with QAttention. ONNX Runtime's ``quantize_dynamic`` is used
   directly because Optimum's ORTQuantizer cannot type the fused contrib ops' outputs and has no
   ``extra_options`` hook; quantizing the unfused graph instead measured ~20% slower. Each
   layer's feed-forward output projection reads the widest activations (a GELU's output), the ones that one
   dynamic scale per batch fits worst: ``fp32_ffn_output`` keeps them fp32, ``smoothing`` rescales them first
   (SmoothQuant; :mod:`training.int8_recipe`, docs/benchmarks.md "int8 and the feed-forward outputs").
   ``scales`` then fixes every activation scale from calibration text, so that an answer does not depend on
   the batch it was read in (:mod:`training.int8_scales`).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from sciner.model_dir import HF_DIR, ONNX_DIR, onnx_path
from training.int8_recipe import Smoothing, ffn_output_nodes, smooth_ffn_output
from training.int8_scales import ScaleCalibration, calibrate_activation_scales

log = logging.getLogger(__name__)


def export_onnx(
    model_dir: str | Path,
    quantize: bool = True,
    fuse_skip_layer_norm: bool = False,
    fp32_ffn_output: bool = False,
    smoothing: Smoothing | None = None,
    scales: ScaleCalibration | None = None,
) -> dict[str, float]:
    """Write ``onnx/fp32/model.onnx`` and ``onnx/int8/model.onnx``; returns seconds per step.
    ``fuse_skip_layer_norm`` restores the former graph (bench/onnx_graph.py compares the two);
    ``fp32_ffn_output`` keeps the feed-forward output projections fp32 in the int8 model, else ``smoothing``
    smooths them before quantization; ``scales`` fixes the int8 model's activation scales on calibration text
    (:mod:`training.int8_scales`) instead of computing them per batch."""
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    model_dir = Path(model_dir)
    timings: dict[str, float] = {}
    staging = model_dir / f".{ONNX_DIR}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    raw_dir, fp32_dir, int8_dir = staging / "raw", staging / "fp32", staging / "int8"

    t0 = time.perf_counter()
    main_export(
        str(model_dir / HF_DIR),
        output=raw_dir,
        task="token-classification",
        device="cpu",
        do_validation=False,
        local_files_only=True,
    )
    timings["export_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # ORT transformer fusions (attention, layer norm, exact GELU) for the fp32 variant; no SkipLayerNorm.
    optimizer = ORTOptimizer.from_pretrained(raw_dir, file_names=["model.onnx"])
    config = OptimizationConfig(optimization_level=2, disable_skip_layer_norm_fusion=not fuse_skip_layer_norm)
    optimizer.optimize(save_dir=fp32_dir, optimization_config=config)
    _keep_single_model(fp32_dir)
    timings["optimize_s"] = time.perf_counter() - t0

    if quantize:
        t0 = time.perf_counter()
        source = fp32_dir / "model.onnx"
        if smoothing is not None and not fp32_ffn_output:
            source = staging / "smoothed" / "model.onnx"
            smooth_ffn_output(fp32_dir / "model.onnx", source, model_dir, smoothing)
        quantize_fused(source, int8_dir / "model.onnx", fp32_ffn_output)
        if scales is not None:
            calibrate_activation_scales(int8_dir / "model.onnx", model_dir, scales)
        timings["quantize_s"] = time.perf_counter() - t0
    shutil.rmtree(raw_dir)
    shutil.rmtree(staging / "smoothed", ignore_errors=True)

    final = model_dir / ONNX_DIR
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    log.info("exported %s (%s)", final, ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    return timings


def quantize_fused(src: Path, dst: Path, fp32_ffn_output: bool = False) -> list[str]:
    """Quantize ``src`` dynamically to int8 at ``dst``; returns the MatMul nodes left fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = ffn_output_nodes(onnx.load(str(src))) if fp32_ffn_output else []
    dst.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=kept,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return kept


def _keep_single_model(folder: Path) -> None:
    """Optimum writes ``model.onnx`` then ``model_optimized.onnx``: keep the optimized one as model.onnx."""
    optimized = folder / "model_optimized.onnx"
    if optimized.exists():
        optimized.replace(folder / "model.onnx")
    for extra in folder.glob("*.onnx_data"):
        log.warning("external data file %s kept", extra)


def has_onnx(model_dir: Path, variant: str) -> bool:
    return onnx_path(model_dir, variant).is_file()
