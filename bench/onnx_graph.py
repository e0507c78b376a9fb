"""ONNX graph benchmark: the exported graph with SkipLayerNormalization fused (the former export)
against Add + LayerNormalization (the current one), side by side in one process, through the real
predictor at the service's settings (one intra-op thread per session, no spinning).

    .venv/bin/python bench/onnx_graph.py --model var/bench/quality-model --sentences 512 --repeats 5

Both graphs are exported afresh from the model folder's ``hf/`` checkpoint by ``training.export``
into a temporary folder. Reported per graph and variant (fp32, int8): sentences/s one text per call
(what a request at low load costs) and in token-budgeted batches, strict micro-F1 on the gold
tokens, and where ONNX Runtime spends its time by operator type (its own profiler, one text per
call).
"""

from __future__ import annotations

import collections
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, model_bench_parser, now, save_result
from bench.inference import spans_to_token_tags, token_offsets
from sciner.io.jsonl import read_jsonl
from sciner.labels import ENTITY_TYPES
from sciner.metrics import evaluate_tags
from sciner.model_dir import HF_DIR, TOKENIZER_FILE, onnx_path
from sciner.predictor import Predictor
from sciner.settings import get_settings, with_overrides
from training.export import export_onnx

GRAPHS = {"SkipLayerNorm fused (former)": True, "Add + LayerNorm (current)": False}
VARIANTS = ("fp32", "int8")


def build_graph(model: Path, root: Path, fuse: bool) -> Path:
    """A model folder with the same checkpoint, exported with or without the SkipLayerNorm fusion."""
    folder = root / ("fused" if fuse else "unfused")
    folder.mkdir(parents=True)
    for name in ("sciner.json", TOKENIZER_FILE):
        shutil.copy2(model / name, folder / name)
    (folder / HF_DIR).symlink_to((model / HF_DIR).resolve())
    export_onnx(folder, quantize=True, fuse_skip_layer_norm=fuse)
    return folder


def op_profile(model_file: Path, predictor: Predictor, texts: list[str], top: int) -> list[tuple[str, float]]:
    """Share of ONNX Runtime kernel time per operator type, one text per call, one thread."""
    import onnxruntime as ort

    from sciner.backends import CPU, disabled_optimizers

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(
            str(model_file),
            opts,
            providers=[CPU],
            disabled_optimizers=disabled_optimizers([CPU]),
        )
        names = {i.name for i in session.get_inputs()}
        for enc in predictor.tokenizer.encode_batch(texts):
            feed = {"input_ids": [enc.ids], "attention_mask": [[1] * len(enc.ids)]}
            if "token_type_ids" in names:
                feed["token_type_ids"] = [[0] * len(enc.ids)]
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values())
    return [(op, by_op[op] / total) for op, _ in by_op.most_common(top)]


def main() -> None:
    ap = model_bench_parser(__doc__, repeats=5)
    ap.add_argument("--profile-sentences", type=int, default=200)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    gold = list(read_jsonl(args.data))[: args.sentences]
    texts, offsets = (list(x) for x in zip(*(token_offsets(s.tokens) for s in gold), strict=True))
    settings = with_overrides(get_settings(), {"intra_op_threads": 1, "ort_spinning": False})
    # the predictor's smallest batch budget (Settings: >= 128); the service's own 64 applies per request
    batch_budget = max(settings.service_token_budget, 128)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {g: build_graph(args.model, Path(tmp), fuse) for g, fuse in GRAPHS.items()}
        engines = {(g, v): Predictor.from_model_dir(f, settings, v) for g, f in folders.items() for v in VARIANTS}
        batch_settings = with_overrides(settings, {"batch_token_budget": batch_budget})
        batched = {key: Predictor(p.backend, p.tokenizer, p.meta, batch_settings) for key, p in engines.items()}
        for p in engines.values():
            p.warmup()
        one: dict[tuple, list[float]] = {k: [] for k in engines}
        many: dict[tuple, list[float]] = {k: [] for k in engines}
        outputs: dict[tuple, list] = {}
        for _ in range(args.repeats):  # interleaved: every engine once per round
            for key, predictor in engines.items():
                t0 = time.perf_counter()
                outputs[key] = [predictor.predict_texts([t])[0] for t in texts]
                one[key].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                batched[key].predict_texts(texts)
                many[key].append(time.perf_counter() - t0)
        profiles = {
            g: op_profile(onnx_path(folders[g], "int8"), engines[(g, "int8")], texts[: args.profile_sentences], 6)
            for g in GRAPHS
        }

    pieces = sum(len(e.ids) for e in next(iter(engines.values())).tokenizer.encode_batch(texts))
    base = {v: statistics.median(one[(next(iter(GRAPHS)), v)]) for v in VARIANTS}
    lines = [
        f"Run {now()} on {machine()}: `{' '.join(sys.argv)}`",
        f"{len(texts)} sentences of {args.data.name} ({pieces / len(texts):.1f} word pieces each), model "
        f"`{args.model.name}`, 1 intra-op thread, median of {args.repeats} interleaved runs; batches: "
        f"length-sorted, ≤ {batch_budget} padded pieces.",
        "",
        "| graph | variant | sentences/s, one per call | ms/sentence | × former "
        "| sentences/s, batches | strict micro-F1 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for (g, v), _p in engines.items():
        t1, tb = statistics.median(one[(g, v)]), statistics.median(many[(g, v)])
        tags = [
            spans_to_token_tags(o, [(e.start, e.end, e.label) for e in r.entities])
            for o, r in zip(offsets, outputs[(g, v)], strict=True)
        ]
        f1 = evaluate_tags([s.tags for s in gold], tags, ENTITY_TYPES).micro_f1
        rows.append({"graph": g, "variant": v, "one_s": one[(g, v)], "batch_s": many[(g, v)], "micro_f1": f1})
        lines.append(
            f"| {g} | {v} | {len(texts) / t1:.0f} | {1000 * t1 / len(texts):.2f} | {base[v] / t1:.2f} | "
            f"{len(texts) / tb:.0f} | {f1:.4f} |"
        )
    lines += [
        "",
        f"ONNX Runtime kernel time by operator, int8, one text per call ({args.profile_sentences} sentences):",
        "",
    ]
    for g, prof in profiles.items():
        lines.append(f"- {g}: " + ", ".join(f"{op} {100 * share:.0f}%" for op, share in prof))
    text = "\n".join(lines)
    print(text)
    save_result("onnx_graph", {"rows": rows, "profiles": profiles}, text)


if __name__ == "__main__":
    main()
