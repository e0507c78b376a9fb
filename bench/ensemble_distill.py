"""Ensemble distillation where a GPU makes it affordable (NuNER's idea with an ensemble as annotator).

K teachers of the default recipe (gold train, ``--teacher-epochs``, crowd layer and capitals as the settings
say), one per seed, train side by side as separate processes on one GPU; each then labels gold train and the
first ``--unlabeled-papers`` abstracts with soft per-word distributions, cached under ``<home>/distill`` exactly
as ``sciner distill`` caches them. One student learns the teachers' averaged distributions (gold CE + KL), the
training ``bench/quality.py --teacher A --teacher B ...`` runs, here in the same process.

    SCINER_DEVICE=cuda .venv/bin/python bench/ensemble_distill.py --teachers 6 --unlabeled-papers 3000 \\
        --student-epochs 2 --out var/bench/ensemble

``<out>/student`` holds the PyTorch checkpoint and its lineage (every teacher, the soft targets' hashes, the
data's hashes), no ONNX: score it as served with ``bench/quality.py --name <n> --rescore <out>/student``.
``<out>/run.json`` records each stage's minutes, every teacher's dev F1 and the ensemble's (PyTorch, unbiased;
``--student-epochs 0`` stops there). On 2 CPU cores each teacher alone is ~28 min and the student ~2 h; on one
H200 the whole run took 7.5 min (docs/quality.md, ``ensemble6-student``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import REPO, SHARED, machine, now, settings_env
from sciner.decoding import softmax
from sciner.io.jsonl import read_jsonl
from sciner.labels import OUTSIDE, labels_of
from sciner.metrics import evaluate_tags
from sciner.model_dir import atomic_write_text, read_metadata
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence
from sciner.settings import Settings, get_settings, with_overrides
from training.distill import ensemble_soft_targets, paper_blocks, soft_targets_for_parts, unlabeled_sentences
from training.eval_split import EvalSplit
from training.gold import evaluation_split
from training.pipeline import train_and_export

log = logging.getLogger("ensemble_distill")

TEACHER_PREFIX = "teacher-s"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "ensemble")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--papers", type=Path, default=SHARED / "anthology" / "papers.jsonl")
    ap.add_argument("--unlabeled-papers", type=int, default=1500, help="how many of --papers the teachers label")
    ap.add_argument("--teachers", type=int, default=6, help="how many teachers (seeds --first-seed, +1, ...)")
    ap.add_argument("--first-seed", type=int, default=43)
    ap.add_argument("--teacher-epochs", type=int, default=1)
    ap.add_argument("--student-epochs", type=int, default=2, help="0: no student, the teachers and their ensemble")
    ap.add_argument("--student-seed", type=int, default=43)
    ap.add_argument("--torch-threads", type=int, default=2, help="SCINER_TORCH_THREADS of each teacher process")
    ap.add_argument(
        "--exclude-eval-split",
        action="store_true",
        help="teachers and student leave out the gate's evaluation documents (SCINER_GOLD_EVAL_*) and record it, "
        "so that `sciner challenge` can judge the student fairly",
    )
    ap.add_argument("--teacher-seed", type=int, default=None, help=argparse.SUPPRESS)  # a teacher process's own
    return ap.parse_args(argv)


def teacher_dir(out: Path, seed: int) -> Path:
    """The teacher's model folder; its process's log and its record (``run_teacher``) sit beside it."""
    return out / f"{TEACHER_PREFIX}{seed}"


def teacher_log(out: Path, seed: int) -> Path:
    return teacher_dir(out, seed).with_suffix(".log")


def teacher_record(out: Path, seed: int) -> Path:
    return teacher_dir(out, seed).with_suffix(".json")


@dataclass
class Data:
    """What every process reads: gold train (less the gate's split, if left out), dev, the abstracts."""

    train: list[Sentence]
    dev: list[Sentence]
    extra: list[Sentence]  # the abstracts' sentences, untagged
    held_out: EvalSplit | None


def load_data(args: argparse.Namespace, settings: Settings) -> Data:
    train = read_jsonl(args.train)
    held_out = evaluation_split(train, settings) if args.exclude_eval_split else None
    extra = unlabeled_sentences(args.papers, args.unlabeled_papers) if args.unlabeled_papers else []
    return Data(held_out.train if held_out else train, read_jsonl(args.dev), extra, held_out)


def run_teacher(args: argparse.Namespace, settings: Settings) -> None:
    """One teacher: train it on gold, then label gold train and the abstracts (cached for the student)."""
    data = load_data(args, settings)
    labels = labels_of(s.tags for s in data.train)
    out = teacher_dir(args.out, args.teacher_seed)
    started = time.perf_counter()
    summary = train_and_export(
        data.train,
        data.dev,
        out,
        settings,
        sources={"train": args.train, "dev": args.dev},
        progress=False,
        finish=False,
        held_out=data.held_out,
    )
    trained = time.perf_counter()
    if args.student_epochs:  # no student: nothing to label for
        parts = [data.train, *paper_blocks(data.extra, settings.distill_block_papers)]
        soft_targets_for_parts(out, parts, labels, settings)
    record = {
        "seed": args.teacher_seed,
        "best_epoch": summary["best_epoch"],
        "train_minutes": (trained - started) / 60,
        "label_minutes": (time.perf_counter() - trained) / 60,
        "dev_torch_micro_f1": read_metadata(out).metrics["dev_torch"]["micro_f1"],
    }
    atomic_write_text(teacher_record(args.out, args.teacher_seed), json.dumps(record, indent=2))


def run_teachers(args: argparse.Namespace, argv: list[str]) -> list[dict]:
    """The teacher processes (this script again, with ``argv`` and its seed), side by side; fails loudly if any
    of them fails."""
    seeds = [args.first_seed + k for k in range(args.teachers)]
    procs: list[subprocess.Popen] = []
    try:
        for seed in seeds:
            env = {**os.environ, "SCINER_SEED": str(seed), "SCINER_TORCH_THREADS": str(args.torch_threads)}
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--teacher-seed", str(seed)]
            with teacher_log(args.out, seed).open("w", encoding="utf-8") as log_file:
                procs.append(subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT))
        failed = [seed for seed, proc in zip(seeds, procs, strict=True) if proc.wait() != 0]
    finally:  # interrupted: no teacher outlives this process
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failed:
        logs = ", ".join(str(teacher_log(args.out, seed)) for seed in failed)
        raise SystemExit(f"teachers of seeds {failed} failed: see {logs}")
    return [json.loads(teacher_record(args.out, s).read_text(encoding="utf-8")) for s in seeds]


def averaged_word_logits(sets: list[list[WordLogits]]) -> list[WordLogits]:
    """Several models' word logits over the same sentences as one model's: the log of their mean probabilities
    (what the student learns from, at temperature 1), so the shared decoder reads the ensemble. Pure."""
    return [
        WordLogits(np.log(np.mean([softmax(s[i].logits) for s in sets], axis=0) + 1e-12), sets[0][i].windows)
        for i in range(len(sets[0]))
    ]


def ensemble_dev(teachers: list[Path], dev: list[Sentence], settings: Settings) -> dict:
    """Dev micro-F1 of the teachers' ensemble, decoded unbiased by the shared predictor (PyTorch where a folder
    holds no ONNX, as the teachers here; ONNX at the teacher variant otherwise)."""
    predictors = [Predictor.from_model_dir(t, settings, settings.distill_teacher_variant) for t in teachers]
    averaged = averaged_word_logits([p.record_logits(dev) for p in predictors])
    predicted = [p.tags for p in predictors[0].decode_records(averaged, dev, 0.0)]
    evaluation = evaluate_tags([[t or OUTSIDE for t in s.tags or []] for s in dev], predicted)
    return {"micro_f1": evaluation.micro_f1, "precision": evaluation.micro_precision, "recall": evaluation.micro_recall}


def run_student(args: argparse.Namespace, settings: Settings, teachers: list[Path], data: Data) -> dict:
    """The student on gold train + the abstracts, learning the teachers' averaged distributions."""
    labels = labels_of(s.tags for s in data.train)
    parts = [data.train, *paper_blocks(data.extra, settings.distill_block_papers)]
    targets = ensemble_soft_targets(teachers, parts, labels, settings)  # every part cached by its teacher
    return train_and_export(
        [*data.train, *data.extra],
        data.dev,
        args.out / "student",
        settings,
        sources={"train": args.train, "dev": args.dev},
        progress=False,
        soft_targets=targets,
        finish=False,
        held_out=data.held_out,
    ) | {"unlabeled_sentences": len(data.extra), "soft_targets_sha256": targets.sha256}


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    if args.teacher_seed is not None:
        run_teacher(args, with_overrides(settings, {"epochs": args.teacher_epochs}))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    teachers = run_teachers(args, argv)
    taught = time.perf_counter()
    log.info("%d teachers trained and labelled in %.1f min: %s", len(teachers), (taught - started) / 60, teachers)
    dirs = [teacher_dir(args.out, t["seed"]) for t in teachers]
    data = load_data(args, settings)
    ensemble = ensemble_dev(dirs, data.dev, settings)
    log.info("the teachers' ensemble on dev: %s", ensemble)
    scored = time.perf_counter()
    summary = None
    if args.student_epochs:
        student_settings = with_overrides(settings, {"epochs": args.student_epochs, "seed": args.student_seed})
        summary = run_student(args, student_settings, dirs, data)
    record = {
        "command": " ".join(["bench/ensemble_distill.py", *argv]),
        "env": settings_env(),
        "machine": machine(),
        "gpu": gpu_name(),
        "at": now(),
        "teachers": teachers,
        "teachers_minutes": (taught - started) / 60,
        "teachers_ensemble_dev": ensemble,
        "student": summary,
        "student_minutes": (time.perf_counter() - scored) / 60,
    }
    atomic_write_text(args.out / "run.json", json.dumps(record, indent=2, default=str))
    log.info("student in %.1f min: %s", record["student_minutes"], summary)


if __name__ == "__main__":
    main()
