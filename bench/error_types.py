"""Where a model's dev errors are, and how consistently the gold labels the same names.

For each model folder: what became of every gold dev entity (exact, right span with another type,
boundary error, boundary and type, missed with nothing predicted over it) and how many predictions
touch no gold entity (spurious), per type, decoded as served (int8 engine, the model's own O-logit bias;
``FOLDER:fp32`` for fp32). Kinds: ``sciner.metrics.ERROR_KINDS``.

For the gold itself (train and dev): of the names the annotators labelled at least ``--min-labelled``
times (a word sequence of at most 4 words that is an entity's exact span), the share of their mentions
that carry a label, counting a mention as unlabelled when every word of it is ``O``. A name the gold
labels in 3 of 4 mentions teaches a model to leave it out 1 time in 4, and scores a model that always
labels it at precision 0.75 on that name.

    .venv/bin/python bench/error_types.py --name errors-crowd-s43 var/bench/quality-gold-1ep-crowd-s43

Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED, env_prefix, machine, now, save_result, settings_env
from bench.paired import model_arg
from sciner.decoding import tags_to_spans
from sciner.io.jsonl import read_jsonl
from sciner.labels import OUTSIDE
from sciner.metrics import ERROR_KINDS, entity_errors, error_markdown
from sciner.predictor import Predictor
from sciner.records import Sentence
from sciner.settings import get_settings

MAX_NAME_WORDS = 4


def label_consistency(sentences: Sequence[Sentence], min_labelled: int = 10, top: int = 12) -> dict:
    """How often the names the gold labels are labelled where they occur (see the module's docstring). Pure.

    ``names``: how many names were labelled ``min_labelled`` times or more; ``pooled_share``: their labelled
    mentions over their labelled + unlabelled ones; ``median_share``: the median of the per-name shares;
    ``top``: the most often labelled names with their counts."""
    labelled: Counter[tuple[str, ...]] = Counter()
    for s in sentences:
        for span in tags_to_spans(s.tags or []):
            if span.end - span.start <= MAX_NAME_WORDS:
                labelled[tuple(s.tokens[span.start : span.end])] += 1
    names = {k for k, n in labelled.items() if n >= min_labelled}
    unlabelled: Counter[tuple[str, ...]] = Counter()
    for s in sentences:
        tags = [t or OUTSIDE for t in (s.tags or [])]
        for width in range(1, MAX_NAME_WORDS + 1):
            for i in range(len(s.tokens) - width + 1):
                key = tuple(s.tokens[i : i + width])
                if key in names and all(t == OUTSIDE for t in tags[i : i + width]):
                    unlabelled[key] += 1
    shares = {k: labelled[k] / (labelled[k] + unlabelled[k]) for k in names}
    total_l = sum(labelled[k] for k in names)
    total_u = sum(unlabelled[k] for k in names)
    ranked = sorted(names, key=lambda k: (-labelled[k], k))[:top]
    return {
        "min_labelled": min_labelled,
        "names": len(names),
        "pooled_share": total_l / (total_l + total_u) if names else 0.0,
        "median_share": statistics.median(shares.values()) if names else 0.0,
        "top": [{"name": " ".join(k), "labelled": labelled[k], "unlabelled": unlabelled[k]} for k in ranked],
    }


def consistency_markdown(split: str, c: dict) -> str:
    lines = [
        f"**{split}**: {c['names']} names labelled {c['min_labelled']}+ times; "
        f"{c['pooled_share']:.0%} of their mentions labelled (median name {c['median_share']:.0%}).",
        "",
        "| name | labelled | unlabelled |",
        "|---|---|---|",
    ]
    lines += [f"| {t['name']} | {t['labelled']} | {t['unlabelled']} |" for t in c["top"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=model_arg, nargs="*", help="model folders (FOLDER or FOLDER:fp32)")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--min-labelled", type=int, default=10, help="names labelled at least this often")
    ap.add_argument("--name", default="errors", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    settings = get_settings()
    dev = read_jsonl(args.dev)
    gold = [[t or OUTSIDE for t in (s.tags or [])] for s in dev]
    consistency = {
        "train": label_consistency(read_jsonl(args.train), args.min_labelled),
        "dev": label_consistency(dev, args.min_labelled),
    }
    errors: dict[str, dict] = {}
    env = settings_env()
    lines = [f"Run {now()} on {machine()}: `{env_prefix(env)}{' '.join(sys.argv)}`", ""]
    for folder, variant in args.models:
        predictor = Predictor.from_model_dir(folder, settings, variant)
        pred = [r.tags for r in predictor.predict_records(dev)]
        name = f"{folder.name} {variant}"
        errors[name] = entity_errors(gold, pred)
        spread = "names propagated" if predictor.propagation else "no name propagation"
        lines += [f"### `{name}` on {len(dev):,} dev sentences (its O bias {predictor.meta.o_bias:+.2f}, {spread})", ""]
        lines += [error_markdown(errors[name]), ""]
    lines += ["### How consistently the gold labels its names", ""]
    for split, c in consistency.items():
        lines += [consistency_markdown(split, c), ""]
    text = "\n".join(lines)
    print(text)
    save_result(
        args.name,
        {
            "command": " ".join(sys.argv),
            "env": env,
            "machine": machine(),
            "at": now(),
            "dev": str(args.dev),
            "kinds": list(ERROR_KINDS),
            "errors": errors,
            "label_consistency": consistency,
        },
        text,
    )


if __name__ == "__main__":
    main()
