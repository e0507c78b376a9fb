"""Dev micro-F1 of model folders per annotator team: SciNER's gold comes from 14 student teams whose
conventions differ, and a hidden test set from a team that labelled nothing in train or dev, so the
spread across teams says how much of an F1 is a team's habits. Teams as the crowd layer counts them
(``training.crowd_layer.team_of``: the repository in each sentence's ``source``).

    .venv/bin/python bench/team_f1.py --name team-f1-crowd \\
        var/bench/quality-gold-1ep-case var/bench/quality-gold-1ep-annotators

Each model is read with its int8 engine (``FOLDER:fp32`` for fp32) and decoded without a bias, as
``bench/paired.py`` does. Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED, machine, now, save_result, sentences_by_team
from bench.paired import model_arg, read_logits
from sciner.io.jsonl import read_jsonl
from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import evaluate_tags
from sciner.predictor import Predictor
from sciner.settings import get_settings


def team_scores(gold: list[list[str]], pred: list[list[str]], teams: dict[str, list[int]], classes: list[str]) -> dict:
    """Per team (and ``all``): micro F1, precision, recall and the gold entity count."""
    out = {}
    for team, idx in [("all", list(range(len(gold)))), *teams.items()]:
        ev = evaluate_tags([gold[i] for i in idx], [pred[i] for i in idx], classes)
        entities = sum(t.startswith("B-") for i in idx for t in gold[i])
        out[team] = {
            "sentences": len(idx),
            "entities": entities,
            "micro_f1": ev.micro_f1,
            "precision": ev.micro_precision,
            "recall": ev.micro_recall,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=model_arg, nargs="+", help="model folders (FOLDER or FOLDER:fp32)")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--name", default="team-f1", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    settings = get_settings()
    dev = read_jsonl(args.dev)
    gold = [[t or OUTSIDE for t in (s.tags or [])] for s in dev]
    teams = sentences_by_team(dev)
    results: dict[str, dict] = {}
    for folder, variant in args.models:
        predictor = Predictor.from_model_dir(folder, settings, variant)
        logits = read_logits(predictor, dev, predictor.meta.context)
        pred = [p.tags for p in predictor.decode_records(logits, dev, 0.0)]
        classes = [t for t in ENTITY_TYPES if f"B-{t}" in predictor.labels]
        results[f"{folder.name} {variant}"] = team_scores(gold, pred, teams, classes)

    names = list(results)
    lines = [
        f"Run {now()} on {machine()}: `{' '.join(sys.argv)}`",
        f"{len(dev)} dev sentences, {len(teams)} teams; strict micro-F1 per team, no bias (P / R in brackets).",
        "",
        "| team | sentences | entities | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for team in ["all", *teams]:
        first = results[names[0]][team]
        cells = [
            f"{r[team]['micro_f1']:.3f} ({r[team]['precision']:.2f} / {r[team]['recall']:.2f})"
            for r in results.values()
        ]
        lines.append(f"| {team} | {first['sentences']:,} | {first['entities']:,} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    save_result(
        args.name,
        {"command": " ".join(sys.argv), "machine": machine(), "at": now(), "dev": str(args.dev), "models": results},
        text,
    )


if __name__ == "__main__":
    main()
