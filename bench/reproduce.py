"""Reproduce the seeds' experiment (Gupta 2025) with sciner's own loop: iterations 0-3 on real papers.

For each gold regime:

1. the gate's evaluation split = the documents of ``../shared/data/sciner/train.jsonl`` carved out by
   document id hash (``SCINER_GOLD_EVAL_FRACTION``, the same split in both regimes, passed to every round
   as ``SCINER_GOLD_EVAL_PATH``); gold train = whole documents of the rest (35 picked with a fixed seed,
   like the paper's 35 manually annotated papers, or all of them); gold dev = ``sciner/dev.jsonl``
   (early stopping, O-bias, thresholds);
2. a real MLflow server (sqlite backend) on loopback, a fresh ``SCINER_HOME`` and paper store;
3. iteration 0 = ``run_bootstrap`` (the code behind ``sciner bootstrap``): registered as v1, ``champion``;
4. iteration k = the next ``--papers-per-round`` papers of ``../shared/data/anthology/papers.jsonl``
   ingested with ``training.ingest.ingest_file`` (the code behind ``sciner ingest``), then one round
   through the scheduler's job (``training.scheduler.scheduled_round``: a ``sciner retrain --once``
   process configured only by ``SCINER_*`` variables), promoted only if the gate (paired bootstrap over
   the evaluation documents, seed spread, per-class floor; ``training.promotion``) says the gain is real;
5. every iteration's scores are read back from the registry (the metrics the round logged), so each
   row of the table names the model version it came from.

Commands (the report is rebuilt after every regime; ``--report-only`` rebuilds it from saved results)::

    python bench/reproduce.py                    # both regimes, then docs/results.md + PNG plot
    python bench/reproduce.py --regime docs35    # the 35-document regime only
    python bench/reproduce.py --regime docs35 --control  # + gold only, trained as long as a round
    python bench/reproduce.py --report-only
    python bench/reproduce.py --regime docs35 --resume   # after an interruption: skip finished iterations

Every finished iteration is checkpointed (``checkpoint.json`` in the regime's folder). ``--resume`` keeps the
regime's registry and paper store and goes on after the last finished iteration (a round cut short
registered nothing: its papers are still unused, and its store entry is closed as abandoned by the next
round); it refuses a checkpoint written with other settings.

State stays in ``var/reproduce/<regime>/`` (open its registry with
``mlflow ui --backend-store-uri sqlite:///var/reproduce/<regime>/mlflow.db``); results go to
``bench/results/reproduce-<regime>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, RESULTS, SHARED, machine, now
from bench.reproduce_report import write_report
from service.mlflow_process import start_mlflow_server
from service.process import stop_process_group

log = logging.getLogger("bench.reproduce")


@dataclass(frozen=True)
class Regime:
    name: str
    documents: int | None  # None = every gold train document
    epochs: int
    papers_per_round: int
    description: str


REGIMES = {
    "docs35": Regime("docs35", 35, 3, 2000, "35 gold train documents (the paper's regime)"),
    "all": Regime("all", None, 1, 1500, "all gold train documents"),
}


def pick_documents(path: Path, count: int | None, seed: int) -> tuple[list[str], list[str]]:
    """Lines of ``count`` whole documents (seeded pick; all when None) and the picked document ids."""
    docs: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                docs.setdefault(json.loads(line)["doc_id"], []).append(line)
    ids = pick_ids(docs, count, seed)
    return [line for d in ids for line in docs[d]], ids


def pick_ids(doc_ids: Iterable[str], count: int | None, seed: int) -> list[str]:
    """``count`` of ``doc_ids`` picked with ``seed``, sorted (all of them when None). Pure."""
    ids = sorted(set(doc_ids))
    return ids if count is None else sorted(random.Random(seed).sample(ids, count))


def carve_eval(train: Path, work: Path) -> dict:
    """Write the gate's evaluation split (``gold_eval.jsonl``) and the gold train pool without it
    (``gold_pool.jsonl``) into ``work``; returns the split's record."""
    from sciner.io.jsonl import read_jsonl, write_jsonl
    from sciner.settings import Settings
    from training.eval_split import carve

    settings = Settings()
    split = carve(read_jsonl(train), settings.gold_eval_fraction, settings.gold_eval_salt)
    write_jsonl(work / "gold_eval.jsonl", split.eval)
    write_jsonl(work / "gold_pool.jsonl", split.train)
    record = {**split.tags, "sentences": len(split.eval), "document_ids": list(split.documents)}
    (work / "eval_split.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def regime_env(regime: Regime, work: Path, uri: str, args: argparse.Namespace) -> dict[str, str]:
    """Everything a round needs, as ``SCINER_*`` variables (the scheduler's round process reads only these)."""
    gate = {"SCINER_SEED_F1_SD": str(args.seed_f1_sd)} if args.seed_f1_sd is not None else {}
    return {
        **gate,
        "SCINER_HOME": str(work / "home"),
        "SCINER_MLFLOW_TRACKING_URI": uri,
        "SCINER_EXPERIMENT_NAME": f"reproduce-{regime.name}",
        "SCINER_GOLD_TRAIN_PATH": str(work / "gold_train.jsonl"),
        "SCINER_GOLD_DEV_PATH": str(args.dev),
        "SCINER_GOLD_EVAL_PATH": str(work / "gold_eval.jsonl"),
        "SCINER_EPOCHS": str(args.epochs or regime.epochs),
        "SCINER_PAPERS_PER_ROUND": str(regime.papers_per_round),
        "SCINER_REANNOTATE_USED_PAPERS": "false",
        "SCINER_AUTO_POOL_MAX_PAPERS": str(regime.papers_per_round),
        "SCINER_SCHEDULER_SUBPROCESS": "true",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def iteration_row(settings: object, iteration: int, version: str, seconds: float, store_round: object) -> dict:
    from sciner import registry

    v = registry.get_version(settings, version)  # type: ignore[arg-type]
    m = v.metrics
    per_class = {k[len("eval_f1_") :]: val for k, val in m.items() if k.startswith("eval_f1_")}
    stats = dict(getattr(store_round, "stats", {}) or {})
    auto = stats.get("auto", {})
    return {
        "iteration": iteration,
        "version": v.version,
        "decision": v.tags.get("decision", ""),
        "reason": v.tags.get("reason", ""),
        "parent_version": v.tags.get("parent_version", ""),
        "champion_after": registry.alias_version(settings, settings.champion_alias).version,  # type: ignore
        "micro_f1": m.get("eval_micro_f1"),
        "macro_f1": m.get("eval_macro_f1"),
        "micro_precision": m.get("eval_micro_precision"),
        "micro_recall": m.get("eval_micro_recall"),
        "token_accuracy": m.get("eval_token_accuracy"),
        "per_class": per_class,
        "f1_delta_vs_champion": m.get("f1_delta"),
        "thresholds": {k[len("threshold_") :]: val for k, val in m.items() if k.startswith("threshold_")},
        "gold_sentences": m.get("gold_train_sentences"),
        "auto_sentences": m.get("auto_sentences"),
        "auto_sentences_with_entities": m.get("auto_sentences_with_entities"),
        "auto_entities_accepted": m.get("auto_entities_accepted"),
        "auto_sentences_annotated": m.get("auto_sentences_annotated"),
        "auto_stats": auto,
        "best_epoch": stats.get("best_epoch"),
        "timings": stats.get("timings", {}),
        "seconds": round(seconds, 1),
    }


CHECKPOINT = "checkpoint.json"


def run_config(regime: Regime, args: argparse.Namespace) -> dict:
    """What must not change between a run and its resumption."""
    return {
        "regime": regime.name,
        "documents": regime.documents,
        "papers_per_round": regime.papers_per_round,
        "epochs": args.epochs or regime.epochs,
        "seed": args.seed,
        "seed_f1_sd": args.seed_f1_sd,
        "train": str(args.train),
        "dev": str(args.dev),
        "papers": str(args.papers),
    }


def resumable_rows(checkpoint: dict | None, config: dict) -> list[dict]:
    """The finished iterations a resumed run keeps (none without a checkpoint); SystemExit naming the
    settings that differ from the checkpoint's."""
    if checkpoint is None:
        return []
    changed = sorted(k for k in {*config, *checkpoint["config"]} if config.get(k) != checkpoint["config"].get(k))
    if changed:
        diffs = ", ".join(f"{k}: {checkpoint['config'].get(k)!r} then, {config.get(k)!r} now" for k in changed)
        raise SystemExit(f"--resume: the checkpoint was written with other settings ({diffs}); run without --resume")
    return list(checkpoint["rows"])


def save_checkpoint(work: Path, config: dict, rows: list[dict], elapsed: float) -> None:
    from sciner.model_dir import atomic_write_text

    body = {"config": config, "rows": rows, "elapsed_seconds": round(elapsed, 1)}
    atomic_write_text(work / CHECKPOINT, json.dumps(body, indent=2, default=str))


def run_regime(regime: Regime, args: argparse.Namespace) -> dict:
    work = REPO / "var" / "reproduce" / f"{regime.name}{args.tag}"
    config = run_config(regime, args)
    checkpoint = None
    if args.resume and (work / CHECKPOINT).is_file():
        checkpoint = json.loads((work / CHECKPOINT).read_text())
    rows = resumable_rows(checkpoint, config)
    elapsed_before = float(checkpoint.get("elapsed_seconds", 0.0)) if checkpoint else 0.0
    if not rows:
        shutil.rmtree(work, ignore_errors=True)
        (work / "stream").mkdir(parents=True)
        carve_eval(args.train, work)
    eval_split = json.loads((work / "eval_split.json").read_text())
    lines, doc_ids = pick_documents(work / "gold_pool.jsonl", regime.documents, args.seed)
    (work / "gold_train.jsonl").write_text("".join(lines), encoding="utf-8")
    server, uri = start_mlflow_server(work)
    started = time.perf_counter() - elapsed_before
    try:
        os.environ.update(regime_env(regime, work, uri, args))
        from sciner.papers import PaperStore
        from sciner.settings import Settings
        from training.bootstrap import run_bootstrap
        from training.ingest import ingest_file
        from training.scheduler import scheduled_round

        settings = Settings()
        log.info("regime %s: %d gold documents, %d sentences; MLflow %s", regime.name, len(doc_ids), len(lines), uri)
        store = PaperStore.from_settings(settings)
        if rows:
            log.info("resuming after iteration %d (v%s)", rows[-1]["iteration"], rows[-1]["version"])
        else:
            t = time.perf_counter()
            boot = run_bootstrap(settings, progress=not args.quiet)
            rows = [iteration_row(settings, 0, str(boot.version), time.perf_counter() - t, store.rounds(1)[0])]
            log.info("iteration 0: v%s micro-F1 %.4f", boot.version, rows[0]["micro_f1"])
            save_checkpoint(work, config, rows, time.perf_counter() - started)
        with args.papers.open(encoding="utf-8") as papers:
            for k in range(1, args.rounds + 1):
                if k < len(rows):  # finished before the interruption: skip its papers
                    for _ in itertools.islice(papers, regime.papers_per_round):
                        pass
                    continue
                batch = work / "stream" / f"papers-{k}.jsonl"
                batch.write_text("".join(itertools.islice(papers, regime.papers_per_round)), encoding="utf-8")
                report = ingest_file(batch, store)
                log.info(
                    "iteration %d: ingested %d papers (%d duplicates, %d errors)",
                    k,
                    report.added,
                    len(report.duplicates),
                    len(report.errors),
                )
                t = time.perf_counter()
                scheduled_round()
                seconds = time.perf_counter() - t
                last = store.rounds(1)[0]
                if last.status != "registered" or not last.model_version:
                    raise SystemExit(f"round {last.id} did not register a version: {last.status} {last.reason}")
                rows.append(iteration_row(settings, k, last.model_version, seconds, last))
                log.info(
                    "iteration %d: v%s micro-F1 %.4f %s",
                    k,
                    last.model_version,
                    rows[-1]["micro_f1"],
                    rows[-1]["decision"],
                )
                save_checkpoint(work, config, rows, time.perf_counter() - started)
        store.close()
    finally:
        stop_process_group(server)
    return {
        "regime": regime.name,
        "description": regime.description,
        "documents": len(doc_ids),
        "document_ids": doc_ids,
        "gold_train_sentences": len(lines),
        "seed": args.seed,
        "epochs": args.epochs or regime.epochs,
        "papers_per_round": regime.papers_per_round,
        "rounds": args.rounds,
        "dev": str(args.dev.relative_to(REPO.parent)) if args.dev.is_relative_to(REPO.parent) else str(args.dev),
        "settings": {
            k: v
            for k, v in regime_env(regime, work, uri, args).items()
            if k.startswith("SCINER_") and k not in ("SCINER_HOME", "SCINER_MLFLOW_TRACKING_URI")
        },
        "machine": machine(),
        "finished_at": now(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "registry": f"sqlite:///var/reproduce/{regime.name}{args.tag}/mlflow.db",
        "iterations": rows,
        "eval_split": eval_split,
    }


def control_epochs(result: dict) -> int:
    """Epochs of gold-only training that take about as many optimizer steps as the average round."""
    gold = result["gold_train_sentences"]
    rounds = result["iterations"][1:]
    mean_train = sum(gold + int(r["auto_sentences"] or 0) for r in rounds) / max(len(rounds), 1)
    return max(1, round(result["epochs"] * mean_train / gold))


def run_control(regime: Regime, args: argparse.Namespace) -> dict:
    """The confound check: gold only, trained as long as a round trains, registered (never promoted)
    in the regime's registry next to the iterations; added to its result file as ``control``."""
    path = RESULTS / f"reproduce-{regime.name}{args.tag}.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the regime first")
    result = json.loads(path.read_text())
    work = REPO / "var" / "reproduce" / f"{regime.name}{args.tag}"
    epochs = control_epochs(result)
    server, uri = start_mlflow_server(work)  # the regime's own registry (same sqlite file and artifacts)
    try:
        os.environ.update({**regime_env(regime, work, uri, args), "SCINER_EPOCHS": str(epochs)})
        from sciner.papers import PaperStore
        from sciner.settings import Settings
        from training.bootstrap import run_bootstrap

        settings = Settings()
        log.info("control for %s: gold only, %d epochs", regime.name, epochs)
        t = time.perf_counter()
        boot = run_bootstrap(settings, progress=not args.quiet, force=True)
        store = PaperStore.from_settings(settings)
        row = iteration_row(settings, 0, str(boot.version), time.perf_counter() - t, store.rounds(1)[0])
        store.close()
    finally:
        stop_process_group(server)
    row["epochs"] = epochs
    result["control"] = row
    path.write_text(json.dumps(result, indent=2, default=str))
    log.info("control: v%s micro-F1 %.4f (%d epochs)", row["version"], row["micro_f1"], epochs)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regime", choices=[*REGIMES, "both"], default="both")
    ap.add_argument("--rounds", type=int, default=3, help="Self-training rounds after iteration 0.")
    ap.add_argument("--epochs", type=int, default=None, help="Override the regime's epochs per training.")
    ap.add_argument("--seed", type=int, default=13, help="Seed of the gold document pick.")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--papers", type=Path, default=SHARED / "anthology" / "papers.jsonl")
    ap.add_argument("--documents", type=int, default=None, help="Override the regime's gold document count.")
    ap.add_argument("--papers-per-round", type=int, default=None, help="Override the regime's papers per round.")
    ap.add_argument(
        "--seed-f1-sd",
        type=float,
        default=None,
        help="The recipe's measured seed spread for the gate (SCINER_SEED_F1_SD; bench/gate_noise.py).",
    )
    ap.add_argument("--tag", default="", help="Suffix of the result file (smoke runs stay out of the report).")
    ap.add_argument(
        "--control",
        action="store_true",
        help="After the regime's result exists: train the gold-only control (as many optimizer "
        "steps as a round) in the same registry and add it to the result.",
    )
    ap.add_argument("--report-only", action="store_true", help="Only rebuild docs/results.md and the plot.")
    ap.add_argument("--quiet", action="store_true", help="No progress bars.")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="Go on after the last finished iteration of an interrupted run (its checkpoint).",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "optimum", "onnxruntime", "urllib3", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    names = list(REGIMES) if args.regime == "both" else [args.regime]
    if args.control:
        for name in names:
            run_control(REGIMES[name], args)
            write_report(RESULTS, REPO / "docs")
    elif not args.report_only:
        for name in names:
            regime = REGIMES[name]
            if args.documents or args.papers_per_round:
                regime = replace(
                    regime,
                    documents=args.documents or regime.documents,
                    papers_per_round=args.papers_per_round or regime.papers_per_round,
                )
            result = run_regime(regime, args)
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / f"reproduce-{name}{args.tag}.json").write_text(json.dumps(result, indent=2, default=str))
            write_report(RESULTS, REPO / "docs")
    write_report(RESULTS, REPO / "docs")


if __name__ == "__main__":
    main()
