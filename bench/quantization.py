"""int8 recipes side by side, on one model folder, in one run (``--engines`` picks some): the folder's int8 as
served; dynamic int8 (activation scales computed per batch, ``SCINER_INT8_ACTIVATION_SCALES=dynamic``) and, on
top of it, the feed-forward output projections kept fp32 (``SCINER_INT8_FP32_FFN_OUTPUT``) or smoothed
(SmoothQuant, ``SCINER_INT8_SMOOTH_ALPHA``); activation scales calibrated at export (``calibrated``, the default
since 2026-12-05); and fp32.

    .venv/bin/python bench/quantization.py --model var/bench/quality-soup-gold-2ep-3ep-fgm03-fgm03x3 \\
        --sentences 1024 --repeats 7 --name quantization-soup-4way

The other int8 models are rebuilt from the folder's fp32 graph in scratch folders by the export's own
``quantize_fused``, ``smooth_ffn_output`` and ``calibrate_activation_scales`` (activation ranges read on
``--calibration-sentences`` evenly spaced sentences of ``--calibration``, gold train by default: the text the
export reads them on). For each
engine, gold dev (``--data``) is read twice, in the predictor's token-budget batches and a sentence at a time
(what a lone request gets): strict micro-F1 unbiased, with the O-logit bias fitted on dev for that engine, and
cross-fitted (each half of the documents decoded with the bias fitted on the other; a bias is fitted per
engine, as training fits it on the engine it serves); the share of sentences whose unbiased tags differ between
the two readings. Speed: the first ``--sentences`` dev sentences as raw texts, one text per call and
token-budget batches, median of ``--repeats`` interleaved runs.
Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.batch_dependence import READINGS, changed_share, reading_predictor
from bench.common import SHARED, gold_tags, machine, model_bench_parser, now, save_result
from bench.crossfit import crossfit_decode
from bench.inference import token_offsets
from sciner.io.formats import read_sentences
from sciner.io.jsonl import read_jsonl
from sciner.metrics import evaluate_tags
from sciner.model_dir import HF_DIR, METADATA_FILE, ONNX_DIR, TOKENIZER_FILE, onnx_path
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import Settings, get_settings
from training.calibrate import bias_grid, fit_o_bias
from training.export import quantize_fused
from training.int8_recipe import Smoothing, evenly_spaced, smooth_ffn_output
from training.int8_scales import ScaleCalibration, calibrate_activation_scales

ENGINES = ("int8", "dynamic", "fp32-ffn", "smoothed", "calibrated", "fp32")


@dataclass(frozen=True)
class Engine:
    name: str
    folder: Path
    variant: str


def variant_folder(model: Path, scratch: Path, name: str) -> Path:
    """A model folder in ``scratch`` that links ``model``'s checkpoint, tokenizer and fp32 graph; its
    ``onnx/int8`` is for the caller to write."""
    folder = scratch / f"{model.name}-{name}"
    folder.mkdir(parents=True)
    for part in (HF_DIR, TOKENIZER_FILE):
        if (model / part).exists():
            (folder / part).symlink_to((model / part).resolve())
    shutil.copy(model / METADATA_FILE, folder / METADATA_FILE)
    (folder / ONNX_DIR).mkdir()
    (folder / ONNX_DIR / "fp32").symlink_to((model / ONNX_DIR / "fp32").resolve())
    return folder


def ffn_fp32_folder(model: Path, scratch: Path) -> Path:
    """``model`` with an int8 graph that keeps the feed-forward outputs fp32."""
    folder = variant_folder(model, scratch, "int8-fp32-ffn-output")
    quantize_fused(onnx_path(model, "fp32"), onnx_path(folder, "int8"), fp32_ffn_output=True)
    return folder


def smoothed_folder(model: Path, scratch: Path, smoothing: Smoothing) -> Path:
    """``model`` with an int8 graph quantized after smoothing the feed-forward outputs."""
    folder = variant_folder(model, scratch, "int8-smoothed-ffn-output")
    smoothed = folder / "smoothed-fp32.onnx"
    smooth_ffn_output(onnx_path(model, "fp32"), smoothed, model, smoothing)
    quantize_fused(smoothed, onnx_path(folder, "int8"))
    return folder


def dynamic_folder(model: Path, scratch: Path, name: str = "int8-dynamic") -> Path:
    """``model`` with a dynamic int8 graph (activation scales computed per batch)."""
    folder = variant_folder(model, scratch, name)
    quantize_fused(onnx_path(model, "fp32"), onnx_path(folder, "int8"))
    return folder


def calibrated_folder(model: Path, scratch: Path, calibration: ScaleCalibration) -> Path:
    """``model`` with an int8 graph whose activation scales are calibrated: the dynamic one, then calibrated."""
    folder = dynamic_folder(model, scratch, "int8-calibrated-scales")
    calibrate_activation_scales(onnx_path(folder, "int8"), folder, calibration)
    return folder


def read_engine(engine: Engine, dev: list[Sentence], settings: Settings) -> dict:
    """F1 of one engine read batched and alone (unbiased, fitted, cross-fitted) and the share of changed tags."""
    gold = gold_tags(dev)
    grid = bias_grid(settings.o_bias_min, settings.o_bias_max, settings.o_bias_step)
    row: dict = {}
    unbiased_tags = {}
    for reading in READINGS:
        predictor = reading_predictor(engine.folder, engine.variant, settings, reading)
        logits = predictor.record_logits(dev)
        fit = fit_o_bias(predictor, logits, dev, grid)
        cross = crossfit_decode(predictor, dev, logits)
        unbiased_tags[reading] = [p.tags for p in predictor.decode_records(logits, dev, 0.0)]
        row[reading] = {
            "micro_f1_unbiased": fit.unbiased.micro_f1,
            "o_bias": fit.o_bias,
            "micro_f1_fitted": fit.chosen.micro_f1,
            "micro_f1_cross_fitted": evaluate_tags(gold, cross.tags).micro_f1,
            "cross_fitted_biases": cross.biases,
        }
    row["sentences_changed"] = changed_share(unbiased_tags["batched"], unbiased_tags["alone"])
    return row


def speeds(engines: list[Engine], texts: list[str], settings: Settings, repeats: int) -> dict[str, dict]:
    """Sentences/s of each engine, one text per call and token-budget batches, median of interleaved runs."""
    predictors = {e.name: Predictor.from_model_dir(e.folder, settings, e.variant) for e in engines}
    for p in predictors.values():
        p.warmup()
    calls = {
        "one_text_per_call": lambda p: [p.predict_texts([t]) for t in texts],
        "batched": lambda p: p.predict_texts(texts),
    }
    seconds: dict[str, dict[str, list[float]]] = {e.name: {c: [] for c in calls} for e in engines}
    for _ in range(repeats):
        for name, predictor in predictors.items():
            for call, run in calls.items():
                t0 = time.perf_counter()
                run(predictor)
                seconds[name][call].append(time.perf_counter() - t0)
    return {
        name: {call: len(texts) / statistics.median(times) for call, times in by_call.items()}
        for name, by_call in seconds.items()
    }


def render(payload: dict) -> str:
    base = payload["rows"][0]["speed"]  # the first engine read: int8 as served unless --engines leaves it out
    lines = [
        f"Run {payload['at']} on {payload['machine']}: `{payload['command']}`",
        f"Model `{payload['model']}`; F1 on {payload['dev_sentences']} dev sentences, read in token-budget batches "
        f"and a sentence at a time; speed on {payload['speed_sentences']} of them, median of {payload['repeats']} "
        "interleaved runs.",
        "",
        "| engine | F1 batched: unbiased / fitted (bias) / cross-fitted | F1 alone: unbiased / fitted (bias) / "
        "cross-fitted | sentences changed | sent/s one text per call | sent/s batched |",
        "|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        cells = [
            f"{x['micro_f1_unbiased']:.4f} / {x['micro_f1_fitted']:.4f} ({x['o_bias']:+.2f}) / "
            f"{x['micro_f1_cross_fitted']:.4f}"
            for x in (r["batched"], r["alone"])
        ]
        one, batched = r["speed"]["one_text_per_call"], r["speed"]["batched"]
        lines.append(
            f"| {r['engine']} | {cells[0]} | {cells[1]} | {r['sentences_changed']:.1%} | "
            f"{one:.0f} ({one / base['one_text_per_call']:.2f}x) | {batched:.0f} ({batched / base['batched']:.2f}x) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = model_bench_parser(__doc__, repeats=5)
    ap.add_argument("--name", default="quantization", help="result file: bench/results/<name>.{json,md}")
    ap.add_argument("--smooth-alpha", type=float, default=0.5, help="SmoothQuant migration strength")
    ap.add_argument("--calibration", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--calibration-sentences", type=int, default=512)
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, some of {', '.join(ENGINES)}")
    args = ap.parse_args()
    chosen = args.engines.split(",")
    if unknown := set(chosen) - set(ENGINES):
        ap.error(f"unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")

    settings = get_settings()
    speed_settings = settings.model_copy(update={"ort_spinning": False})  # engines share the cores in turn
    dev = read_jsonl(args.data)
    texts = [token_offsets(s.tokens)[0] for s in dev[: args.sentences]]
    calibration = evenly_spaced(read_sentences(args.calibration), args.calibration_sentences)
    with tempfile.TemporaryDirectory(prefix="sciner-quantization-") as scratch:
        build = {
            "int8": lambda: Engine("int8 as served", args.model, "int8"),
            "dynamic": lambda: Engine(
                "int8, dynamic activation scales", dynamic_folder(args.model, Path(scratch)), "int8"
            ),
            "fp32-ffn": lambda: Engine(
                "int8, fp32 feed-forward outputs", ffn_fp32_folder(args.model, Path(scratch)), "int8"
            ),
            "smoothed": lambda: Engine(
                f"int8, smoothed feed-forward outputs (alpha {args.smooth_alpha})",
                smoothed_folder(args.model, Path(scratch), Smoothing(args.smooth_alpha, calibration, settings)),
                "int8",
            ),
            "calibrated": lambda: Engine(
                "int8, calibrated activation scales",
                calibrated_folder(args.model, Path(scratch), ScaleCalibration(calibration, settings)),
                "int8",
            ),
            "fp32": lambda: Engine("fp32", args.model, "fp32"),
        }
        engines = [build[key]() for key in ENGINES if key in chosen]
        rows = [{"engine": e.name, **read_engine(e, dev, settings)} for e in engines]
        for row, speed in zip(rows, speeds(engines, texts, speed_settings, args.repeats).values(), strict=True):
            row["speed"] = speed
    payload = {
        "command": " ".join(sys.argv),
        "calibration": {"source": str(args.calibration), "sentences": len(calibration)},
        "machine": machine(),
        "at": now(),
        "model": str(args.model),
        "dev_sentences": len(dev),
        "speed_sentences": len(texts),
        "repeats": args.repeats,
        "rows": rows,
    }
    text = render(payload)
    print(text)
    save_result(args.name, payload, text)


if __name__ == "__main__":
    main()
