"""Paired comparison of model folders on gold dev: each model's F1 (int8, or ``FOLDER:fp32``), read as
it was trained and (``--readings``) read otherwise, optionally the mean of their distributions
(``--ensemble``), and the paired bootstrap over dev documents of each against the first.

    .venv/bin/python bench/paired.py --name paired-student-doc \\
        var/bench/quality-student var/bench/quality-student-doc --readings
    .venv/bin/python bench/paired.py --name paired-ensemble --ensemble \\
        var/bench/quality-student-3ep var/bench/quality-mpnet-teacher:fp32

Rows measured side by side on the same sentences, with the promotion gate's own statistics
(``training.promotion``: strict entity counts per document, percentile interval of the micro-F1
delta over resampled documents), so a difference is shown with its uncertainty, not as a bare number.
``--readings`` adds, for every model, the other way of reading dev: sentences alone for a model
trained with document context (what a client sending one sentence gets), documents whole for a
sentence model, decoded with the same ``--bias`` (before 2026-12-07 always without one). No bias
is applied by default (``decode`` at 0): the models are compared, not their calibrations;
``--bias crossfit`` decodes each model with the O-logit bias fitted on the other half of the dev documents
(what serving it with a calibrated bias gives, without fitting on what is scored); ``--bias stored`` with the bias
its folder holds, fitted when it was trained (honest where ``--dev`` is data it was not fitted on: a team left out,
``bench/team_holdout.py``); ``--bias teams`` decodes each annotator team's sentences with the bias fitted on the
other teams'. Names are propagated within documents as the settings say (``SCINER_NAME_PROPAGATION``; runs
before it existed decoded without); ``--propagation both`` shows each model without it and then with it, that
row's delta against the one above:

    .venv/bin/python bench/paired.py --name paired-propagation --bias crossfit --propagation both \
        var/bench/quality-gold-1ep-crowd-s43 var/bench/quality-gold-1ep-crowd-s43-er05

Writes bench/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import SHARED, env_prefix, folds_by_team, machine, now, save_result, settings_env
from bench.crossfit import crossfit_decode
from sciner.decoding import softmax
from sciner.io.jsonl import read_jsonl
from sciner.predictor import Predictor, WordLogits
from sciner.records import Sentence
from sciner.settings import get_settings
from training.promotion import document_counts, micro_f1, paired_bootstrap, sentence_counts

# how --bias decodes: at 0, fitted on the other dev half, the folder's own, fitted on the other annotator teams
BIASES = ("none", "crossfit", "stored", "teams")
BIAS_WORDS = {
    "none": "no bias",
    "crossfit": "O-logit bias cross-fitted on dev halves",
    "stored": "each folder's own O-logit bias",
    "teams": "O-logit bias of each team fitted on the other teams",
}


def read_logits(predictor: Predictor, dev: list[Sentence], context: str) -> list[WordLogits]:
    """``predictor``'s word logits over ``dev``, read with ``context`` (``sentence`` or ``document``)."""
    reader = Predictor(
        predictor.backend, predictor.tokenizer, dataclasses.replace(predictor.meta, context=context), predictor.settings
    )
    return reader.record_logits(dev)


def counts_of(
    predictor: Predictor, dev: list[Sentence], logits: list[WordLogits], bias: str = "none", propagate: bool = True
) -> np.ndarray:
    """Per-document strict entity counts of ``logits`` decoded by ``predictor`` without a bias (``none``), with the
    O-logit bias fitted on the other half of the dev documents (``crossfit``), with the one its folder holds
    (``stored``) or each team's sentences with the bias fitted on the other teams' (``teams``); names propagated
    within documents as the settings say unless ``propagate`` is false."""
    if bias not in BIASES:
        raise ValueError(f"bias {bias!r}: one of {', '.join(BIASES)}")
    if bias in ("crossfit", "teams"):
        folds = folds_by_team(dev) if bias == "teams" else None
        tags = crossfit_decode(predictor, dev, logits, propagate, folds).tags
    else:
        at = None if bias == "stored" else 0.0
        tags = [p.tags for p in predictor.decode_records(logits, dev, at, propagate)]
    counts, _ = document_counts(sentence_counts([s.tags or [] for s in dev], tags), [s.doc_id for s in dev])
    return counts


def read_counts(predictor: Predictor, dev: list[Sentence], context: str, bias: str = "none") -> np.ndarray:
    """Per-document strict entity counts of ``predictor`` reading ``dev`` with ``context``, decoded with ``bias``
    as :func:`counts_of` (unbiased by default)."""
    return counts_of(predictor, dev, read_logits(predictor, dev, context), bias)


def mean_distribution(predictors: list[Predictor], logits: list[list[WordLogits]]) -> list[WordLogits]:
    """The models' per-word probabilities averaged (in the first model's label order), as log-probabilities
    the first model's decoder takes: an ensemble's labels, for comparison only (it needs every model)."""
    labels = predictors[0].labels
    orders = [[p.labels.index(lab) for lab in labels] for p in predictors]
    out = []
    for rows in zip(*logits, strict=True):
        if not len(rows[0].logits):
            out.append(rows[0])
            continue
        mean = np.mean([softmax(r.logits[:, order]) for r, order in zip(rows, orders, strict=True)], axis=0)
        out.append(WordLogits(np.log(np.maximum(mean, 1e-12)), rows[0].windows))
    return out


def model_arg(value: str) -> tuple[Path, str]:
    """``FOLDER`` (its int8 engine) or ``FOLDER:fp32``."""
    folder, _, variant = value.rpartition(":") if value.endswith((":fp32", ":int8")) else (value, "", "int8")
    return Path(folder), variant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "models", type=model_arg, nargs="+", help="model folders (FOLDER or FOLDER:fp32); the first is the reference"
    )
    ap.add_argument("--ensemble", action="store_true", help="also score the mean of all models' distributions")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--readings", action="store_true", help="also read each model the other way")
    ap.add_argument(
        "--bias",
        choices=BIASES,
        default="none",
        help="none: decode at 0 (the models compared, not their calibrations); crossfit: each model with the "
        "O-logit bias fitted on the other half of the dev documents (a soup's calibration differs from its members'); "
        "stored: the bias each folder holds (fitted on the dev it was trained with); teams: each annotator team's "
        "sentences with the bias fitted on the other teams' (how the bias carries to a team it was not fitted on)",
    )
    ap.add_argument(
        "--propagation",
        choices=("settings", "both"),
        default="settings",
        help="settings: names propagated within documents as SCINER_NAME_PROPAGATION says; both: each model "
        "without it, then with it (the first row, the reference, is the first model without)",
    )
    ap.add_argument("--samples", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--name", default="paired", help="result file: bench/results/<name>.{json,md}")
    args = ap.parse_args()

    settings = get_settings()
    dev = read_jsonl(args.dev)
    rows: list[tuple[str, np.ndarray]] = []
    own_reference: dict[int, int] = {}  # row -> the row it is compared with, when not the first
    predictors, as_trained = [], []
    for folder, variant in args.models:
        predictor = Predictor.from_model_dir(folder, settings, variant)
        trained = predictor.meta.context
        logits = read_logits(predictor, dev, trained)
        predictors.append(predictor)
        as_trained.append(logits)
        label = f"`{folder.name}` {variant}, read as trained ({trained}s)"
        if args.propagation == "both":
            rows.append((f"{label}, no name propagation", counts_of(predictor, dev, logits, args.bias, False)))
            own_reference[len(rows)] = len(rows) - 1
            label += ", names propagated (delta vs the row above)"
        rows.append((label, counts_of(predictor, dev, logits, args.bias)))
        if args.readings:
            other = "sentence" if trained == "document" else "document"
            rows.append((f"`{folder.name}` {variant}, read as {other}s", read_counts(predictor, dev, other, args.bias)))
    if args.ensemble:
        mean = mean_distribution(predictors, as_trained)
        rows.append(("mean of the models' distributions", counts_of(predictors[0], dev, mean)))
    reference_name, reference = rows[0]
    lines = [
        f"Run {now()} on {machine()}: `{env_prefix(settings_env())}{' '.join(sys.argv)}`",
        f"{len(dev)} dev sentences of {len({s.doc_id for s in dev})} documents, ONNX, "
        f"{BIAS_WORDS[args.bias]}; "
        f"delta vs {reference_name}, 95% interval over {args.samples} document resamples.",
        "",
        "| model, reading | micro-F1 | delta (points) | 95% interval |",
        "|---|---|---|---|",
    ]
    payload_rows = []
    for k, (name, counts) in enumerate(rows):
        f1 = micro_f1(counts)
        if counts is reference:
            lines.append(f"| {name} | {f1:.4f} | | |")
            payload_rows.append({"row": name, "micro_f1": f1})
            continue
        against = rows[own_reference[k]][1] if k in own_reference else reference
        ci = paired_bootstrap(counts, against, samples=args.samples)
        lines.append(f"| {name} | {f1:.4f} | {100 * ci.delta:+.2f} | [{100 * ci.lower:+.2f}, {100 * ci.upper:+.2f}] |")
        payload_rows.append({"row": name, "micro_f1": f1, **dataclasses.asdict(ci)})
    text = "\n".join(lines)
    print(text)
    save_result(
        args.name,
        {"command": " ".join(sys.argv), "env": settings_env(), "machine": machine(), "at": now(), "rows": payload_rows},
        text,
    )


if __name__ == "__main__":
    main()
