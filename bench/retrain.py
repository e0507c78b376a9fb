"""Time one full self-training round stage by stage on real data.

Gold train/dev from ``../shared/data/sciner``, unlabeled papers from ``../shared/data/anthology/papers.jsonl``
(all of them are ingested; the round takes as many as give ``--auto-sentences`` sentences). A bootstrap
champion is trained first (timed separately, not part of the round). An MLflow server (sqlite backend)
is started on loopback unless ``--tracking-uri`` is given.

Full scale (the issue's target: gold train + 10k anthology sentences, <= 30 min on 2 cores)::

    python bench/retrain.py --epochs 1
    python bench/retrain.py --epochs 1 --champion-dir var/bench/quality-model   # skip the bootstrap training

Reduced scale (what fits a shared 2-core box)::

    python bench/retrain.py --gold-limit 2000 --dev-limit 1000 --auto-sentences 1000 --epochs 1

Writes a JSON report (``--out``) and prints a markdown table of stage timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, SHARED
from service.mlflow_process import start_mlflow_server
from service.process import stop_process_group


def papers_for_sentences(path: Path, target: int) -> tuple[int, int]:
    """How many papers (in ingestion order) give at least ``target`` sentences, and how many they give."""
    from sciner.paper_records import Paper, paper_from_mapping
    from training.autoannotate import paper_sentences

    papers = sentences = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = paper_from_mapping(json.loads(line))
            sentences += len(paper_sentences(Paper(0, rec.paper_id, rec.text, rec.title, "", rec.content_hash)))
            papers += 1
            if sentences >= target:
                break
    return papers, sentences


def register_champion(settings: object, model_dir: Path) -> object:
    """Version 1 = an existing model folder, aliased ``champion`` (no training)."""
    from sciner import registry
    from training.round_common import RoundResult

    version = registry.register_model_dir(
        settings,
        model_dir,
        run_name="bench-champion",
        tags={"kind": "bench", "decision": "promoted"},  # type: ignore[arg-type]
        description=f"Champion for bench/retrain.py, registered from {model_dir}.",
    )
    registry.set_alias(settings, settings.champion_alias, version.version)  # type: ignore[arg-type, attr-defined]
    return RoundResult("registered", version=version.version)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--papers", type=Path, default=SHARED / "anthology" / "papers.jsonl")
    ap.add_argument("--gold-limit", type=int, default=None, help="First N gold train sentences.")
    ap.add_argument("--dev-limit", type=int, default=None, help="First N gold dev sentences.")
    ap.add_argument("--auto-sentences", type=int, default=10_000, help="Anthology sentences to auto-annotate.")
    ap.add_argument("--epochs", type=int, default=1, help="Epochs of the round's candidate.")
    ap.add_argument("--bootstrap-epochs", type=int, default=1, help="Epochs of the bootstrap champion.")
    ap.add_argument(
        "--champion-dir",
        type=Path,
        default=None,
        help="Register this model folder as the champion instead of training a bootstrap model "
        "(the round's cost does not depend on how the champion was made).",
    )
    ap.add_argument("--tracking-uri", default=None, help="Use this MLflow server instead of starting one.")
    ap.add_argument("--workdir", type=Path, default=None, help="Keep state here (default: a temp dir).")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrain.json")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "optimum", "onnxruntime", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from sciner.io.jsonl import read_jsonl, write_jsonl
    from sciner.papers import PaperStore
    from sciner.settings import Settings, with_overrides
    from training.bootstrap import run_bootstrap
    from training.ingest import ingest_file
    from training.rounds import run_round

    work = args.workdir or Path(tempfile.mkdtemp(prefix="sciner-bench-retrain-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gold = read_jsonl(args.gold)[: args.gold_limit]
    dev = read_jsonl(args.dev)[: args.dev_limit]
    write_jsonl(work / "gold_train.jsonl", gold)
    write_jsonl(work / "gold_dev.jsonl", dev)
    need_papers, auto_sentences = papers_for_sentences(args.papers, args.auto_sentences)
    prep_s = time.perf_counter() - t0

    server, uri = (None, args.tracking_uri) if args.tracking_uri else start_mlflow_server(work)
    load_start = os.getloadavg()
    try:
        base = Settings(
            home=work / "home",
            mlflow_tracking_uri=uri,
            gold_train_path=work / "gold_train.jsonl",
            gold_dev_path=work / "gold_dev.jsonl",
            epochs=args.bootstrap_epochs,
            papers_per_round=need_papers,
            reannotate_used_papers=False,
            auto_pool_max_papers=max(need_papers, 1),
        )
        t = time.perf_counter()
        make_champion = (
            (lambda: register_champion(base, args.champion_dir))
            if args.champion_dir
            else (lambda: run_bootstrap(base, progress=False))
        )
        boot = make_champion()
        bootstrap_s = time.perf_counter() - t

        store = PaperStore.from_settings(base)
        t = time.perf_counter()
        report = ingest_file(args.papers, store)
        ingest_s = time.perf_counter() - t
        store.close()

        settings = with_overrides(base, {"epochs": args.epochs})
        t = time.perf_counter()
        result = run_round(settings, progress=False)
        round_s = time.perf_counter() - t
    finally:
        if server is not None:
            stop_process_group(server)
    load_end = os.getloadavg()

    timings = dict(result.timings)
    train_other = timings["train"] - timings.get("train_fit", 0)
    stages = [
        ("ingest (whole papers.jsonl)", ingest_s),
        ("load champion (registry download + ONNX session)", timings.get("load_champion", 0)),
        ("calibrate thresholds (champion on gold dev)", timings.get("calibrate", 0)),
        ("predict + auto-annotate", timings.get("auto_annotate", 0)),
        ("snapshot", timings.get("snapshot", 0)),
        ("teacher soft targets (SCINER_ROUND_DISTILL)", timings.get("teacher_soft_targets", 0)),
        ("train (fit, incl. per-epoch dev eval)", timings.get("train_fit", 0)),
        ("train (tokenize, load, save)", train_other),
        ("soup (champion checkpoint download + average)", timings.get("soup", 0)),
        ("export ONNX fp32 + int8, calibrate, dev eval (trained model and soup)", timings.get("export", 0)),
        ("evaluate candidate + champion on gold eval", timings.get("evaluate", 0)),
        ("decide (gate + bootstrap CI)", timings.get("decide", 0)),
        ("review artifacts", timings.get("review", 0)),
        ("register (MLflow run + model version + aliases)", timings.get("register", 0)),
        ("record papers used", timings.get("record", 0)),
    ]
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
        },
        "inputs": {
            "gold_train_sentences": len(gold),
            "gold_dev_sentences": len(dev),
            "papers_ingested": report.added,
            "papers_duplicates": len(report.duplicates),
            "papers_in_round": need_papers,
            "auto_sentences_target": args.auto_sentences,
            "auto_sentences_split": auto_sentences,
            "epochs": args.epochs,
            "bootstrap_epochs": args.bootstrap_epochs,
            "champion_dir": str(args.champion_dir) if args.champion_dir else None,
        },
        "result": result.to_dict(),
        "bootstrap": {"seconds": bootstrap_s, "version": boot.version, "timings": boot.timings},
        "prep_seconds": prep_s,
        "ingest_seconds": ingest_s,
        "round_seconds": round_s,
        "stages": dict(stages),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    auto = result.stats.get("auto", {})
    print(
        f"\n{len(gold)} gold + {auto.get('sentences', 0)} auto-annotated sentences "
        f"({result.stats.get('auto_sentences', 0)} kept for training), {args.epochs} epoch(s); "
        f"decision {result.decision}\n"
    )
    print("| stage | seconds |\n|---|---|")
    for name, sec in stages:
        print(f"| {name} | {sec:.1f} |")
    print(f"| **round total (`run_round`)** | **{round_s:.1f}** |")
    print(
        f"\nbootstrap champion (not part of the round): {bootstrap_s:.1f} s; load average {load_start} -> "
        f"{load_end}; report: {args.out}"
    )


if __name__ == "__main__":
    main()
