"""Inference benchmark: HF ``pipeline("token-classification", aggregation_strategy="simple")`` at
batch sizes 1/8/32 vs the sciner predictor (ONNX Runtime fp32 and int8), on the same raw
sentences, in one run, runs interleaved, medians reported.

    .venv/bin/python bench/inference.py --model var/bench/quality-model --sentences 512 --repeats 3

``--without-propagation`` adds ``--model``'s int8 predictor with name propagation off to the same runs.
``--compare OTHER_MODEL`` adds another model folder's int8 predictor to the same interleaved runs: the
side-by-side speed check of a retrained (for example distilled) model against the served one:

    .venv/bin/python bench/inference.py --model var/bench/quality-gold-1ep-scierc \
        --compare var/bench/quality-student --compare var/bench/quality-mpnet-teacher --name inference-student

F1 of every engine is computed the same way: its character-offset entities are mapped back onto
the gold tokens of the sentence and scored with seqeval (strict IOB2).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, model_bench_parser, now, save_result
from sciner.io.jsonl import read_jsonl
from sciner.labels import ENTITY_TYPES
from sciner.metrics import evaluate_tags
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import get_settings, with_overrides


def token_offsets(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    text, offsets, pos = [], [], 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        text.append(tok)
        pos += len(tok) + 1
    return " ".join(text), offsets


def texts_of(gold: list[Sentence], per_text: int) -> list[list[Sentence]]:
    """Consecutive sentences of one document, up to ``per_text`` to a text (1: every sentence its own text)."""
    groups: list[list[Sentence]] = []
    for s in gold:
        if groups and len(groups[-1]) < per_text and groups[-1][-1].doc_id == s.doc_id:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def spans_to_token_tags(offsets: list[tuple[int, int]], spans: list[tuple[int, int, str]]) -> list[str]:
    tags = ["O"] * len(offsets)
    for start, end, label in sorted(spans):
        inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > start]
        if not inside or any(tags[i] != "O" for i in inside):
            continue
        tags[inside[0]] = f"B-{label}"
        for i in inside[1:]:
            tags[i] = f"I-{label}"
    return tags


def result_name(model: Path, compare: list[Path], default_model: Path) -> str:
    """``inference`` for the default model alone (the tracked reference run); otherwise named after the models."""
    if Path(model) == Path(default_model) and not compare:
        return "inference"
    return "-".join(["inference", Path(model).name, *(f"vs-{Path(c).name}" for c in compare)])


def main() -> None:
    ap = model_bench_parser(__doc__, repeats=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pipeline-batch-sizes", default="1,8,32")
    ap.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        help="another model folder whose int8 predictor runs interleaved with --model's "
        "(a speed check of a retrained model against the served one); repeatable",
    )
    ap.add_argument(
        "--without-propagation",
        action="store_true",
        help="also run --model's int8 predictor with name propagation off (SCINER_NAME_PROPAGATION=false), "
        "interleaved: what propagation costs (use --sentences-per-text > 1: it works within a text)",
    )
    ap.add_argument(
        "--sentences-per-text",
        type=int,
        default=1,
        help="join up to this many consecutive sentences of a document into one text (what a model trained "
        "with document context reads together); speeds stay sentences/s",
    )
    ap.add_argument(
        "--name",
        default=None,
        help="result file: bench/results/<name>.{json,md}; default `inference` for the default model alone, "
        "else named after the models (`inference-<model>[-vs-<compare>...]`), so a side run never overwrites it",
    )
    args = ap.parse_args()
    args.name = args.name or result_name(args.model, args.compare, ap.get_default("model"))
    logging.basicConfig(level=logging.WARNING)

    import torch
    from transformers import pipeline

    torch.set_num_threads(args.threads)
    gold = [s for s in read_jsonl(args.data)][: args.sentences]
    groups = texts_of(gold, args.sentences_per_text)
    texts, offsets = zip(*(token_offsets([t for s in g for t in s.tokens]) for g in groups), strict=True)
    texts, offsets = list(texts), list(offsets)
    gold_tags = [[t for s in g for t in s.tags or []] for g in groups]
    n_pieces = None

    # ORT threads must not spin between runs: the engines are interleaved in one process and
    # spinning ORT threads would steal the cores from the next PyTorch (HF pipeline) run.
    settings = with_overrides(get_settings(), {"intra_op_threads": args.threads, "ort_spinning": False})
    engines: dict[str, object] = {}
    hf = pipeline("token-classification", model=str(args.model / "hf"), aggregation_strategy="simple", device=-1)
    for bs in [int(b) for b in args.pipeline_batch_sizes.split(",")]:
        engines[f"HF pipeline, batch {bs}"] = ("hf", bs)
    predictors = {v: Predictor.from_model_dir(args.model, settings, v) for v in ("fp32", "int8")}
    for v in ("fp32", "int8"):
        engines[f"sciner ORT {v}, one text per call"] = ("ours1", v)
        engines[f"sciner ORT {v}, token-budget batches"] = ("ours", v)
    if args.without_propagation:
        plain = with_overrides(settings, {"name_propagation": False})
        predictors["int8, no name propagation"] = Predictor.from_model_dir(args.model, plain, "int8")
        for kind, calls in (("ours1", "one text per call"), ("ours", "token-budget batches")):
            engines[f"sciner ORT int8, {calls}, no name propagation"] = (kind, "int8, no name propagation")
    for other in args.compare:
        predictors[f"compare:{other}"] = Predictor.from_model_dir(other, settings, "int8")
        engines[f"`{other.name}` ORT int8, one text per call"] = ("ours1", f"compare:{other}")
        engines[f"`{other.name}` ORT int8, token-budget batches"] = ("ours", f"compare:{other}")
    n_pieces = sum(len(e.ids) for e in predictors["fp32"].tokenizer.encode_batch(texts))

    def run(kind: tuple) -> list[list[tuple[int, int, str]]]:
        if kind[0] == "hf":
            out = hf(texts, batch_size=kind[1])
            return [[(e["start"], e["end"], e["entity_group"]) for e in ents] for ents in out]
        predictor = predictors[kind[1]]
        if kind[0] == "ours1":
            results = [predictor.predict_texts([t])[0] for t in texts]
        else:
            results = predictor.predict_texts(texts)
        return [[(e.start, e.end, e.label) for e in r.entities] for r in results]

    for p in predictors.values():
        p.warmup()
    hf(texts[:8], batch_size=8)
    timings: dict[str, list[float]] = {name: [] for name in engines}
    outputs: dict[str, list] = {}
    for _ in range(args.repeats):  # interleaved: every engine once per round
        for name, kind in engines.items():
            t0 = time.perf_counter()
            outputs[name] = run(kind)
            timings[name].append(time.perf_counter() - t0)

    rows = []
    for name in engines:
        pred_tags = [spans_to_token_tags(o, s) for o, s in zip(offsets, outputs[name], strict=True)]
        ev = evaluate_tags(gold_tags, pred_tags, ENTITY_TYPES)
        med = statistics.median(timings[name])
        rows.append((name, len(gold) / med, ev.micro_f1, timings[name]))
    best_hf = max(r[1] for r in rows if r[0].startswith("HF"))
    fp32_f1 = next(r[2] for r in rows if r[0] == "sciner ORT fp32, token-budget batches")
    lines = [
        f"Run {now()} on {machine()}, {args.threads} threads: `{' '.join(sys.argv)}`",
        f"{len(gold)} sentences of {args.data.name} in {len(texts)} texts ({n_pieces} word pieces, "
        f"{n_pieces / len(gold):.1f} per sentence), model `{args.model.name}`, median of {args.repeats} "
        "interleaved runs.",
        "",
        "| engine | sentences/s (median) | × best HF pipeline | strict micro-F1 | F1 Δ vs fp32 (points) |",
        "|---|---|---|---|---|",
    ]
    for name, sps, f1, _ in rows:
        lines.append(f"| {name} | {sps:.0f} | {sps / best_hf:.2f} | {f1:.4f} | {100 * (f1 - fp32_f1):+.2f} |")
    text = "\n".join(lines)
    print(text)
    save_result(
        args.name,
        {"rows": [{"engine": n, "sentences_per_s": s, "f1": f, "seconds": t} for n, s, f, t in rows]},
        text,
    )


if __name__ == "__main__":
    main()
