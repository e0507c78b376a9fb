"""Names seen in training against names never seen: where a model's dev recall and precision come from.

A gold dev entity is *seen* when its words (lower-cased) are labelled as an entity, of any type, somewhere in the
training file, and *novel* otherwise; a prediction likewise. A model that memorises names does well on the seen
ones and poorly on the novel ones, which are most of what a new paper, or a team never seen, brings. For each
model folder this reads dev once (the served int8 engine unless ``FOLDER:fp32``, each sentence with its document,
names propagated as the predictor does) and scores strict entities (type and span), split both ways, without a
bias and with the folder's own. Scores are counts over the whole dev; ``--dev`` and ``--train`` pick other files
(a team left out: ``bench/team_holdout.py``'s ``team.jsonl`` against its ``train.jsonl``).

    .venv/bin/python bench/novel_names.py --name novel-names-swap-s42 \\
        var/bench/quality-gold-1ep-crowd-s42-rerun var/bench/quality-gold-1ep-crowd-s42-swap03

Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED, env_prefix, machine, now, save_result, settings_env
from bench.paired import model_arg
from sciner.decoding import strict_entities, tags_to_spans
from sciner.io.jsonl import read_jsonl
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import get_settings

Name = tuple[str, ...]
Mention = tuple[int, int, int, str]  # sentence, start, end, type


def name_key(words: Sequence[str]) -> Name:
    return tuple(w.lower() for w in words)


def labelled_names(sentences: Iterable[Sentence]) -> set[Name]:
    """Every word sequence labelled as an entity (any type), lower-cased. Pure."""
    return {name_key(s.tokens[span.start : span.end]) for s in sentences for span in tags_to_spans(s.tags or [])}


def mentions(tags: Sequence[Sequence[str | None]]) -> set[Mention]:
    """Strict entities of tag sequences as ``(sentence, start, end, type)``. Pure."""
    return {(i, *entity) for i, t in enumerate(tags) for entity in strict_entities(t)}


def split_scores(
    words: Sequence[Sequence[str]], gold: set[Mention], predicted: set[Mention], seen: set[Name]
) -> dict[str, dict[str, float]]:
    """Strict recall over the gold mentions and precision over the predicted ones, each split by whether the
    mention's name is in ``seen``; ``all`` for both together. Pure."""

    def is_seen(m: Mention) -> bool:
        return name_key(words[m[0]][m[1] : m[2]]) in seen

    out: dict[str, dict[str, float]] = {}
    for part, keep in (("seen", is_seen), ("novel", lambda m: not is_seen(m)), ("all", lambda m: True)):
        g = {m for m in gold if keep(m)}
        p = {m for m in predicted if keep(m)}
        hit_g, hit_p = len(g & predicted), len(p & gold)
        recall = hit_g / len(g) if g else 0.0
        precision = hit_p / len(p) if p else 0.0
        out[part] = {
            "gold": len(g),
            "predicted": len(p),
            "recall": recall,
            "precision": precision,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        }
    return out


def markdown(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| model, reading | seen: gold | recall | predicted | precision | novel: gold | recall | predicted "
        "| precision | all: F1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rows.items():
        seen, novel = s["seen"], s["novel"]
        lines.append(
            f"| `{name}` | {seen['gold']:,} | {seen['recall']:.3f} | {seen['predicted']:,} | {seen['precision']:.3f} "
            f"| {novel['gold']:,} | {novel['recall']:.3f} | {novel['predicted']:,} | {novel['precision']:.3f} "
            f"| {s['all']['f1']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=model_arg, nargs="+", help="model folders (FOLDER or FOLDER:fp32)")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--name", default="novel-names", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    settings = get_settings()
    seen = labelled_names(read_jsonl(args.train))
    dev = read_jsonl(args.dev)
    words = [s.tokens for s in dev]
    gold = mentions([s.tags or [] for s in dev])
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for folder, variant in args.models:
        predictor = Predictor.from_model_dir(folder, settings, variant)
        logits = predictor.record_logits(dev)
        for reading, bias in (("no bias", 0.0), (f"its bias {predictor.meta.o_bias:+.2f}", None)):
            predicted = mentions([p.tags for p in predictor.decode_records(logits, dev, o_bias=bias)])
            rows[f"{folder.name} {variant}, {reading}"] = split_scores(words, gold, predicted, seen)
    env = settings_env()
    gold_split = split_scores(words, gold, set(), seen)
    novel_share = gold_split["novel"]["gold"] / max(gold_split["all"]["gold"], 1)
    text = "\n".join(
        [
            f"Run {now()} on {machine()}: `{env_prefix(env)}{' '.join(sys.argv)}`",
            "",
            f"{len(dev):,} sentences of `{args.dev}`; {len(gold):,} gold entities, {novel_share:.0%} of them with a "
            f"name never labelled in `{args.train}` ({len(seen):,} names labelled there). Strict entities, counts "
            "over the whole file.",
            "",
            markdown(rows),
        ]
    )
    print(text)
    save_result(
        args.name,
        {
            "command": " ".join(sys.argv),
            "env": env,
            "machine": machine(),
            "at": now(),
            "train": str(args.train),
            "dev": str(args.dev),
            "novel_share": novel_share,
            "rows": rows,
        },
        text,
    )


if __name__ == "__main__":
    main()
