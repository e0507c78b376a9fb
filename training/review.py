"""Review artifacts logged with every registered version (promoted or not).

``review/`` in the run holds:

- ``per_class.md``: candidate vs champion P/R/F1 per class on the gold evaluation split;
- ``confusion.md`` / ``confusion.json`` (+ ``confusion.png``): word-level type confusion of the candidate;
- ``side_by_side.md`` / ``side_by_side.jsonl``: gold vs champion vs candidate on sampled sentences,
  sentences where the two models disagree first;
- ``decision.json``, ``thresholds.json``, ``summary.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from sciner.decoding import tags_to_spans
from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import Evaluation, confusion_counts
from sciner.model_dir import atomic_write_text
from sciner.records import Sentence
from sciner.settings import Settings

log = logging.getLogger(__name__)


def per_class_table(candidate: Evaluation, champion: Evaluation | None, champion_name: str = "champion") -> str:
    if champion is None:
        return "# Per-class scores (gold evaluation split)\n\n" + candidate.table() + "\n"
    lines = [
        "# Per-class scores on the gold evaluation split",
        "",
        f"| class | support | {champion_name} P | R | F1 | candidate P | R | F1 | ΔF1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in sorted(set(candidate.per_class) | set(champion.per_class)):
        c, h = candidate.per_class.get(name), champion.per_class.get(name)
        support = (c or h).support  # type: ignore[union-attr]
        hp, hr, hf = (h.precision, h.recall, h.f1) if h else (0.0, 0.0, 0.0)
        cp, cr, cf = (c.precision, c.recall, c.f1) if c else (0.0, 0.0, 0.0)
        lines.append(f"| {name} | {support} | {hp:.3f} | {hr:.3f} | {hf:.3f} | {cp:.3f} | {cr:.3f} | "
                     f"{cf:.3f} | {cf - hf:+.3f} |")
    lines.append(
        f"| **micro** | {candidate.gold_entities} | {champion.micro_precision:.3f} | {champion.micro_recall:.3f} | "
        f"{champion.micro_f1:.3f} | {candidate.micro_precision:.3f} | {candidate.micro_recall:.3f} | "
        f"{candidate.micro_f1:.3f} | {candidate.micro_f1 - champion.micro_f1:+.3f} |"
    )
    lines.append(f"| **macro** | | | | {champion.macro_f1:.3f} | | | {candidate.macro_f1:.3f} | "
                 f"{candidate.macro_f1 - champion.macro_f1:+.3f} |")
    lines.append("")
    lines.append(f"token accuracy: {champion_name} {champion.token_accuracy:.4f}, "
                 f"candidate {candidate.token_accuracy:.4f} over {candidate.sentences} sentences")
    return "\n".join(lines) + "\n"


def confusion_markdown(counts: dict[str, dict[str, int]]) -> str:
    names = sorted(set(counts) | {p for row in counts.values() for p in row}, key=lambda n: (n != OUTSIDE, n))
    lines = ["# Word-level type confusion (rows: gold, columns: predicted)", "",
             "| gold \\ pred | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for g in names:
        row = counts.get(g, {})
        lines.append(f"| {g} | " + " | ".join(str(row.get(p, 0)) for p in names) + " |")
    return "\n".join(lines) + "\n"


def _confusion_png(counts: dict[str, dict[str, int]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except Exception:  # pragma: no cover - optional
        return False
    names = sorted(set(counts) | {p for row in counts.values() for p in row}, key=lambda n: (n != OUTSIDE, n))
    m = np.array([[counts.get(g, {}).get(p, 0) for p in names] for g in names], dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("candidate: word-level confusion (row-normalized colour)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def render(tokens: Sequence[str], tags: Sequence[str | None]) -> str:
    """``We use [BERT](MethodName) on ...``; unknown (masked) words as ``?word``."""
    spans = {s.start: s for s in tags_to_spans([t or OUTSIDE for t in tags])}
    out, i = [], 0
    while i < len(tokens):
        if i in spans:
            s = spans[i]
            out.append(f"[{' '.join(tokens[s.start:s.end])}]({s.label})")
            i = s.end
            continue
        out.append(tokens[i] if tags[i] is not None else f"?{tokens[i]}")
        i += 1
    return " ".join(out)


def side_by_side(
    gold: Sequence[Sentence], champion: Sequence[Sequence[str]] | None, candidate: Sequence[Sequence[str]],
    size: int,
) -> tuple[str, list[dict]]:
    """Sample of sentences: disagreements between champion and candidate first, then the rest."""
    idx = list(range(len(gold)))
    if champion is not None:
        differ = [i for i in idx if list(champion[i]) != list(candidate[i])]
        same = [i for i in idx if list(champion[i]) == list(candidate[i])]
        idx = differ + same
    chosen = sorted(idx[:size], key=lambda i: (champion is not None and list(champion[i]) == list(candidate[i]), i))
    lines = ["# Side by side: gold vs champion vs candidate", ""]
    rows = []
    for i in chosen:
        s = gold[i]
        gold_tags = [t or OUTSIDE for t in (s.tags or [])]
        row = {"id": s.id, "tokens": s.tokens, "gold": gold_tags, "candidate": list(candidate[i])}
        lines.append(f"### {s.id}")
        lines.append(f"- gold:      {render(s.tokens, gold_tags)}")
        if champion is not None:
            row["champion"] = list(champion[i])
            lines.append(f"- champion:  {render(s.tokens, champion[i])}")
        lines.append(f"- candidate: {render(s.tokens, candidate[i])}")
        lines.append("")
        rows.append(row)
    return "\n".join(lines) + "\n", rows


def write_review(
    out_dir: Path,
    *,
    gold: Sequence[Sentence],
    candidate_eval: Evaluation,
    candidate_pred: Sequence[Sequence[str]],
    champion_eval: Evaluation | None = None,
    champion_pred: Sequence[Sequence[str]] | None = None,
    champion_name: str = "champion",
    sample_size: int = 40,
    extra_json: dict[str, object] | None = None,
) -> Path:
    """Write the ``review/`` folder; returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "per_class.md", per_class_table(candidate_eval, champion_eval, champion_name))
    gold_tags = [[t or OUTSIDE for t in (s.tags or [])] for s in gold]
    counts = confusion_counts(gold_tags, candidate_pred)
    atomic_write_text(out_dir / "confusion.json", json.dumps(counts, indent=1, sort_keys=True))
    atomic_write_text(out_dir / "confusion.md", confusion_markdown(counts))
    try:
        _confusion_png(counts, out_dir / "confusion.png")
    except Exception as exc:  # a plot must never fail a round
        log.warning("confusion plot failed: %s", exc)
    md, rows = side_by_side(gold, champion_pred, candidate_pred, sample_size)
    atomic_write_text(out_dir / "side_by_side.md", md)
    atomic_write_text(out_dir / "side_by_side.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for name, obj in (extra_json or {}).items():
        atomic_write_text(out_dir / f"{name}.json", json.dumps(obj, indent=1, sort_keys=True, default=str))
    return out_dir


def write_review_tasks(path: Path, rows: list[dict], model_name: str) -> int:
    """Label Studio tasks with the model's entities as pre-annotations (+ the labeling config)."""
    from sciner.io.labelstudio import label_config, prediction_task, write_tasks
    from sciner.records import Entity

    tasks = [
        prediction_task(
            r["text"], [Entity(**e) for e in r["entities"]], f"{model_name}/v{r.get('annotator_version', '')}",
            meta={"sentence_id": r["id"], "paper_id": r["paper_id"], "confidence": r["confidence"],
                  "round": r.get("round")},
        )
        for r in rows
    ]
    write_tasks(path, tasks)
    atomic_write_text(path.with_name(path.stem + ".label_config.xml"), label_config(ENTITY_TYPES))
    return len(tasks)


def load_predictions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def export_review(
    settings: Settings, out: Path, *, version: str | None = None, round_id: int | None = None,
    count: int | None = None,
) -> tuple[int, str]:
    """Active-learning export: the ``count`` lowest-confidence auto-annotated sentences of a round as
    Label Studio pre-annotated tasks. Source: the round folder under ``SCINER_HOME`` (``round_id``) or
    the ``auto/predictions.jsonl`` artifact of a registered version (default: the challenger)."""
    import tempfile

    count = settings.active_learning_count if count is None else count
    if round_id is not None:
        src = settings.home / "rounds" / f"{round_id:05d}" / "auto" / "predictions.jsonl"
        if not src.is_file():
            raise FileNotFoundError(f"round {round_id} has no auto-annotations at {src}")
        rows, origin = load_predictions(src), f"round {round_id}"
    else:
        from sciner import registry

        mv = registry.get_version(settings, version) if version else registry.alias_version(
            settings, settings.challenger_alias)
        if mv is None or not mv.run_id:
            raise FileNotFoundError("no version to export from (no challenger alias; pass --version)")
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=mv.run_id, artifact_path="auto/predictions.jsonl", dst_path=tmp,
                    tracking_uri=settings.mlflow_tracking_uri)
            except Exception as exc:
                raise FileNotFoundError(f"version {mv.version} has no auto/predictions.jsonl: {exc}") from exc
            rows = load_predictions(Path(local))
        origin = f"version {mv.version}"
    rows = sorted(rows, key=lambda r: r["confidence"])[:count]
    return write_review_tasks(out, rows, settings.registered_model_name), origin
