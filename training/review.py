"""Review artifacts logged with every registered version (promoted or not).

``review/`` in the run holds:

- ``per_class.md``: candidate vs champion P/R/F1 per class on the gold evaluation split;
- ``confusion.md`` / ``confusion.json`` (+ ``confusion.png``): word-level type confusion of the candidate;
- ``side_by_side.html`` (the page to read: verdict, per-class deltas, confusion image, sentences in colour,
  :mod:`training.review_html`), ``side_by_side.md`` / ``side_by_side.jsonl``: gold vs champion vs candidate
  on sampled sentences, sentences where the two models disagree first;
- ``decision.json``, ``thresholds.json``, ``summary.json``, ``lineage.json`` (rounds add them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from sciner.labels import ENTITY_TYPES, OUTSIDE
from sciner.metrics import Evaluation, confusion_counts, entity_errors, error_markdown
from sciner.model_dir import atomic_write_text
from sciner.records import Sentence
from sciner.settings import Settings
from training.review_html import spans as span_set

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
        lines.append(
            f"| {name} | {support} | {hp:.3f} | {hr:.3f} | {hf:.3f} | {cp:.3f} | {cr:.3f} | {cf:.3f} | {cf - hf:+.3f} |"
        )
    lines.append(
        f"| **micro** | {candidate.gold_entities} | {champion.micro_precision:.3f} | {champion.micro_recall:.3f} | "
        f"{champion.micro_f1:.3f} | {candidate.micro_precision:.3f} | {candidate.micro_recall:.3f} | "
        f"{candidate.micro_f1:.3f} | {candidate.micro_f1 - champion.micro_f1:+.3f} |"
    )
    lines.append(
        f"| **macro** | | | | {champion.macro_f1:.3f} | | | {candidate.macro_f1:.3f} | "
        f"{candidate.macro_f1 - champion.macro_f1:+.3f} |"
    )
    lines.append("")
    lines.append(
        f"token accuracy: {champion_name} {champion.token_accuracy:.4f}, "
        f"candidate {candidate.token_accuracy:.4f} over {candidate.sentences} sentences"
    )
    return "\n".join(lines) + "\n"


def confusion_markdown(counts: dict[str, dict[str, int]]) -> str:
    names = sorted(set(counts) | {p for row in counts.values() for p in row}, key=lambda n: (n != OUTSIDE, n))
    lines = [
        "# Word-level type confusion (rows: gold, columns: predicted)",
        "",
        "| gold \\ pred | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for g in names:
        row = counts.get(g, {})
        lines.append(f"| {g} | " + " | ".join(str(row.get(p, 0)) for p in names) + " |")
    return "\n".join(lines) + "\n"


def errors_markdown(errors: dict[str, dict[str, dict[str, int]]]) -> str:
    """One entity-error table (:func:`sciner.metrics.entity_errors`) per model, the candidate first."""
    lines = [
        "# What became of each gold entity",
        "",
        "exact: span and type right; type: exact span, other type; boundary: overlapped by its type, other span;",
        "boundary_type: overlapped only by other types and spans; missed: nothing predicted over it;",
        "spurious: a prediction that overlaps no gold entity (under the predicted type).",
    ]
    for name, counts in errors.items():
        lines += ["", f"## {name}", "", error_markdown(counts)]
    return "\n".join(lines)


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
                ax.text(
                    j,
                    i,
                    int(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("candidate: word-level confusion (row-normalized colour)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def _md(text: str) -> str:
    """A token as literal markdown text (no emphasis, links or HTML)."""
    return text.translate(_MD_SPECIAL)


def render(tokens: Sequence[str], tags: Sequence[str | None], gold: Sequence[str | None] | None = None) -> str:
    """``We use **BERT** ⟨MethodName⟩ on ...``: the class stays visible as text (``[x](Label)`` would be a
    link in MLflow's viewer). Against ``gold``: an entity not in gold is marked ``✗``, missed gold entities
    are listed at the end. Unknown (masked) words as ``?word``."""
    found = span_set(tags)
    by_start = {s.start: s for s in found}
    gold_spans = span_set(gold) if gold is not None else None
    out, i = [], 0
    while i < len(tokens):
        if i in by_start:
            s = by_start[i]
            mark = " ✗" if gold_spans is not None and s not in gold_spans else ""
            out.append(f"**{_md(' '.join(tokens[s.start : s.end]))}** ⟨{s.label}{mark}⟩")
            i = s.end
            continue
        out.append(_md(tokens[i]) if tags[i] is not None else f"?{_md(tokens[i])}")
        i += 1
    line = " ".join(out)
    if gold_spans is not None:
        missed = sorted(gold_spans - found, key=lambda s: (s.start, s.end))
        if missed:
            line += " — missed: " + ", ".join(
                f"~~{_md(' '.join(tokens[s.start : s.end]))}~~ ⟨{s.label}⟩" for s in missed
            )
    return line


def side_by_side(
    gold: Sequence[Sentence],
    champion: Sequence[Sequence[str]] | None,
    candidate: Sequence[Sequence[str]],
    size: int,
) -> tuple[str, list[dict]]:
    """Sample of sentences: disagreements between champion and candidate first, then the rest."""
    idx = list(range(len(gold)))
    if champion is not None:
        differ = [i for i in idx if list(champion[i]) != list(candidate[i])]
        same = [i for i in idx if list(champion[i]) == list(candidate[i])]
        idx = differ + same
    chosen = sorted(idx[:size], key=lambda i: (champion is not None and list(champion[i]) == list(candidate[i]), i))
    lines = [
        "# Side by side: gold vs champion vs candidate",
        "",
        "Entities in **bold** with their class in ⟨ ⟩; ✗ marks an entity that is not in gold (other "
        "boundaries or class); missed gold entities are listed ~~struck through~~. "
        "`side_by_side.html` shows the same sentences in colour.",
        "",
    ]
    rows = []
    for i in chosen:
        s = gold[i]
        gold_tags = [t or OUTSIDE for t in (s.tags or [])]
        row = {"id": s.id, "tokens": s.tokens, "gold": gold_tags, "candidate": list(candidate[i])}
        disagree = champion is not None and list(champion[i]) != list(candidate[i])
        lines.append(f"### {s.id}" + (" (models disagree)" if disagree else ""))
        lines.append(f"- gold:      {render(s.tokens, gold_tags)}")
        if champion is not None:
            row["champion"] = list(champion[i])
            lines.append(f"- champion:  {render(s.tokens, champion[i], gold_tags)}")
        lines.append(f"- candidate: {render(s.tokens, candidate[i], gold_tags)}")
        lines.append("")
        rows.append(row)
    return "\n".join(lines) + "\n", rows


def plain(obj: object) -> object:
    """JSON-ready copy: numpy scalars become Python ``bool``/``int``/``float`` (``json.dumps(default=str)``
    would write ``numpy.bool_(False)`` as the string ``"False"``)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and type(obj).__module__ == "numpy":
        return obj.item()
    return obj


def write_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(plain(obj), indent=1, sort_keys=True, default=str, ensure_ascii=False))


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
    title: str = "Review",
    verdict: str = "",
    decision: str = "",
) -> Path:
    """Write the ``review/`` folder; returns it."""
    from training.review_html import page, per_class_html

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "per_class.md", per_class_table(candidate_eval, champion_eval, champion_name))
    gold_tags = [[t or OUTSIDE for t in (s.tags or [])] for s in gold]
    counts = confusion_counts(gold_tags, candidate_pred)
    write_json(out_dir / "confusion.json", counts)
    atomic_write_text(out_dir / "confusion.md", confusion_markdown(counts))
    png = out_dir / "confusion.png"
    try:
        _confusion_png(counts, png)
    except Exception as exc:  # a plot must never fail a round
        log.warning("confusion plot failed: %s", exc)
    errors = {"candidate": entity_errors(gold_tags, candidate_pred)}
    if champion_pred is not None:
        errors[champion_name] = entity_errors(gold_tags, champion_pred)
    write_json(out_dir / "errors.json", errors)
    atomic_write_text(out_dir / "errors.md", errors_markdown(errors))
    md, rows = side_by_side(gold, champion_pred, candidate_pred, sample_size)
    atomic_write_text(out_dir / "side_by_side.md", md)
    atomic_write_text(out_dir / "side_by_side.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic_write_text(
        out_dir / "side_by_side.html",
        page(
            rows,
            title=title,
            verdict=verdict,
            decision=decision,
            table_html=per_class_html(candidate_eval, champion_eval, champion_name),
            confusion_png=png.read_bytes() if png.is_file() else None,
        ),
    )
    for name, obj in (extra_json or {}).items():
        write_json(out_dir / f"{name}.json", obj)
    return out_dir


def annotator_name(model_name: str, annotator_version: str) -> str:
    """``sciner/v7`` for a champion version; a teacher's own name (``teacher:<folder>@<sha12>``) as it is."""
    return annotator_version if annotator_version.startswith("teacher:") else f"{model_name}/v{annotator_version}"


def write_review_tasks(path: Path, rows: list[dict], model_name: str) -> int:
    """Label Studio tasks with the model's entities as pre-annotations (+ the labeling config)."""
    from sciner.io.labelstudio import label_config, prediction_task, write_tasks
    from sciner.records import Entity

    tasks = [
        prediction_task(
            r["text"],
            [Entity(**e) for e in r["entities"]],
            annotator_name(model_name, r.get("annotator_version", "")),
            meta={
                "sentence_id": r["id"],
                "paper_id": r["paper_id"],
                "confidence": r["confidence"],
                "round": r.get("round"),
            },
        )
        for r in rows
    ]
    write_tasks(path, tasks)
    atomic_write_text(path.with_name(path.stem + ".label_config.xml"), label_config(ENTITY_TYPES))
    return len(tasks)


def load_predictions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def export_review(
    settings: Settings,
    out: Path,
    *,
    version: str | None = None,
    round_id: int | None = None,
    count: int | None = None,
) -> tuple[int, str]:
    """Active-learning export: the ``count`` lowest-confidence auto-annotated sentences of a round as
    Label Studio pre-annotated tasks. Source: the round folder under ``SCINER_HOME`` (``round_id``) or
    the ``auto/predictions.jsonl`` artifact of a registered version (default: the challenger)."""
    import tempfile

    from training.round_common import round_dir_of

    count = settings.active_learning_count if count is None else count
    if round_id is not None:
        src = round_dir_of(settings, round_id) / "auto" / "predictions.jsonl"
        if not src.is_file():
            raise FileNotFoundError(f"round {round_id} has no auto-annotations at {src}")
        rows, origin = load_predictions(src), f"round {round_id}"
    else:
        from sciner import registry

        mv = (
            registry.get_version(settings, version)
            if version
            else registry.alias_version(settings, settings.challenger_alias)
        )
        if mv is None or not mv.run_id:
            raise FileNotFoundError("no version to export from (no challenger alias; pass --version)")
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=mv.run_id,
                    artifact_path="auto/predictions.jsonl",
                    dst_path=tmp,
                    tracking_uri=settings.mlflow_tracking_uri,
                )
            except Exception as exc:
                raise FileNotFoundError(f"version {mv.version} has no auto/predictions.jsonl: {exc}") from exc
            rows = load_predictions(Path(local))
        origin = f"version {mv.version}"
    rows = sorted(rows, key=lambda r: r["confidence"])[:count]
    return write_review_tasks(out, rows, settings.registered_model_name), origin
