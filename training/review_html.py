"""``review/side_by_side.html``: the reviewer's page of a version, rendered inline by MLflow's artifact viewer.

One self-contained UTF-8 page (inline CSS, the confusion image as a data URI, no scripts: the viewer
sandboxes HTML) with the verdict, the per-class delta table, the confusion image and the sampled
sentences, those where champion and candidate disagree first. In each sentence the gold, champion
and candidate entities are highlighted in their class's colour with the class name beside them; a
predicted entity that is not in gold (other boundaries or other class) is outlined in red, and the
gold entities a model missed are listed after its line, struck through.

Pure: rows in, HTML text out.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sciner.decoding import strict_entities
from sciner.labels import ENTITY_TYPES
from sciner.metrics import Evaluation

# Okabe-Ito-like pastels: distinguishable for most colour-blind readers, dark text stays readable.
PALETTE: dict[str, str] = {
    "MethodName": "#9ecae1",
    "HyperparameterName": "#fdd0a2",
    "HyperparameterValue": "#fdae6b",
    "MetricName": "#c7e9c0",
    "MetricValue": "#74c476",
    "TaskName": "#dadaeb",
    "DatasetName": "#fbb4c4",
}
EXTRA_COLOURS = ("#e5d8bd", "#ccebc5", "#fed9a6", "#b3cde3", "#decbe4")
WHO = ("gold", "champion", "candidate")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2em;color:#222;line-height:1.5}
h1{font-size:1.3em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .4em}
.verdict{font-size:1.05em;padding:.5em .7em;border-radius:6px;background:#f3f3f3}
.verdict.promoted{background:#e5f5e0} .verdict.rejected{background:#fee0d2}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left} .neg{color:#b00020;font-weight:600} .pos{color:#006d2c}
.legend span.e{margin-right:.5em}
.e{border-radius:4px;padding:0 3px;margin:0 1px;white-space:nowrap}
.e b{font-weight:400;font-size:.72em;opacity:.8;margin-left:3px;font-family:ui-monospace,monospace}
.e.wrong{outline:2px solid #d7301f;outline-offset:0}
.miss{font-size:.85em;color:#b00020;margin-left:.6em}
.miss s{color:#555} .masked{color:#999}
.sent{border-top:1px solid #ddd;padding:.4em 0}
.sent .id{font-size:.8em;color:#666} .badge{font-size:.75em;background:#fdd49e;border-radius:3px;padding:0 4px}
.line{margin:.15em 0} .who{display:inline-block;width:6.5em;color:#555;font-size:.85em}
img{max-width:100%;height:auto}
"""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


def spans(tags: Sequence[str | None]) -> set[Span]:
    """Entity spans (word offsets) of a tag sequence; masked (``None``) words count as outside."""
    return {Span(*entity) for entity in strict_entities(tags)}


def colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per class: the fixed palette for SciNER classes, then extra ones in order."""
    out = {name: PALETTE[name] for name in labels if name in PALETTE}
    extra = iter(EXTRA_COLOURS * (1 + len(labels)))
    for name in labels:
        out.setdefault(name, next(extra))
    return out


def _chip(text: str, label: str, colour: str, who: str, wrong: bool = False) -> str:
    cls = "e wrong" if wrong else "e"
    title = f"{who}: {label}" + (" (not in gold)" if wrong else "")
    return (
        f'<span class="{cls}" style="background:{colour}" data-who="{who}" data-label="{html.escape(label)}" '
        f'title="{html.escape(title)}">{html.escape(text)}<b>{html.escape(label)}</b></span>'
    )


def render_line(
    tokens: Sequence[str],
    tags: Sequence[str | None],
    who: str,
    palette: Mapping[str, str],
    gold: set[Span] | None = None,
) -> str:
    """A sentence with ``who``'s entities highlighted; against ``gold``: wrong ones outlined, missed ones listed."""
    found = spans(tags)
    by_start = {s.start: s for s in found}
    out, i = [], 0
    while i < len(tokens):
        if i in by_start:
            s = by_start[i]
            wrong = gold is not None and s not in gold
            out.append(_chip(" ".join(tokens[s.start : s.end]), s.label, palette.get(s.label, "#eee"), who, wrong))
            i = s.end
            continue
        word = html.escape(tokens[i])
        out.append(f'<span class="masked" title="masked">{word}</span>' if tags[i] is None else word)
        i += 1
    line = " ".join(out)
    if gold is not None:
        missed = sorted(gold - found, key=lambda s: (s.start, s.end))
        if missed:
            items = ", ".join(
                f"<s>{html.escape(' '.join(tokens[s.start : s.end]))}</s> ({html.escape(s.label)})" for s in missed
            )
            line += f'<span class="miss">missed: {items}</span>'
    return line


def _delta_cell(value: float) -> str:
    cls = "neg" if value < -1e-9 else "pos" if value > 1e-9 else ""
    return f'<td class="{cls}">{value:+.3f}</td>'


def per_class_html(candidate: Evaluation, champion: Evaluation | None, champion_name: str) -> str:
    """Per-class P/R/F1 of candidate (and champion, with the F1 delta) as an HTML table."""
    names = sorted(set(candidate.per_class) | set(champion.per_class if champion else {}))
    if champion is None:
        head = "<tr><th>class</th><th>support</th><th>P</th><th>R</th><th>F1</th></tr>"
        rows = [
            f"<tr><td>{html.escape(n)}</td><td>{c.support}</td><td>{c.precision:.3f}</td><td>{c.recall:.3f}</td>"
            f"<td>{c.f1:.3f}</td></tr>"
            for n in names
            if (c := candidate.per_class.get(n))
        ]
        rows.append(
            f"<tr><th>micro</th><td>{candidate.gold_entities}</td><td>{candidate.micro_precision:.3f}</td>"
            f"<td>{candidate.micro_recall:.3f}</td><td>{candidate.micro_f1:.3f}</td></tr>"
        )
        return f"<table>{head}{''.join(rows)}</table>"
    head = (
        f"<tr><th>class</th><th>support</th><th>{html.escape(champion_name)} F1</th><th>candidate F1</th>"
        "<th>ΔF1</th><th>candidate P</th><th>candidate R</th></tr>"
    )
    rows = []
    for n in names:
        c, h = candidate.per_class.get(n), champion.per_class.get(n)
        cf, hf = (c.f1 if c else 0.0), (h.f1 if h else 0.0)
        support = (c or h).support  # type: ignore[union-attr]
        rows.append(
            f"<tr><td>{html.escape(n)}</td><td>{support}</td><td>{hf:.3f}</td><td>{cf:.3f}</td>"
            f"{_delta_cell(cf - hf)}<td>{c.precision if c else 0:.3f}</td><td>{c.recall if c else 0:.3f}</td>"
            "</tr>"
        )
    rows.append(
        f"<tr><th>micro</th><td>{candidate.gold_entities}</td><td>{champion.micro_f1:.3f}</td>"
        f"<td>{candidate.micro_f1:.3f}</td>{_delta_cell(candidate.micro_f1 - champion.micro_f1)}"
        f"<td>{candidate.micro_precision:.3f}</td><td>{candidate.micro_recall:.3f}</td></tr>"
    )
    rows.append(
        f"<tr><th>macro</th><td></td><td>{champion.macro_f1:.3f}</td><td>{candidate.macro_f1:.3f}</td>"
        f"{_delta_cell(candidate.macro_f1 - champion.macro_f1)}<td></td><td></td></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def legend(palette: Mapping[str, str]) -> str:
    chips = " ".join(f'<span class="e" style="background:{c}">{html.escape(n)}</span>' for n, c in palette.items())
    wrong = '<span class="e wrong" style="background:#eee">not in gold</span>'
    return f'<p class="legend">{chips} {wrong} <span class="miss">missed: <s>gold entity</s></span></p>'


def page(
    rows: Sequence[Mapping],
    *,
    title: str,
    verdict: str = "",
    decision: str = "",
    table_html: str = "",
    confusion_png: bytes | None = None,
) -> str:
    """The whole page. ``rows`` as in ``side_by_side.jsonl``: ``id``, ``tokens``, ``gold``, ``candidate``
    and (when there was a champion) ``champion`` tag lists, in display order."""
    labels_seen = {s.label for r in rows for who in WHO if who in r for s in spans(r[who])}
    palette = colours([*ENTITY_TYPES, *sorted(labels_seen - set(ENTITY_TYPES))])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if verdict:
        parts.append(f'<p class="verdict {html.escape(decision)}">{html.escape(verdict)}</p>')
    if table_html:
        parts += ["<h2>Per-class scores on the gold evaluation split</h2>", table_html]
    if confusion_png:
        data = base64.b64encode(confusion_png).decode("ascii")
        parts += [
            "<h2>Candidate: word-level confusion (rows gold, columns predicted)</h2>",
            f'<img alt="confusion matrix" src="data:image/png;base64,{data}">',
        ]
    has_champion = any("champion" in r for r in rows)
    differ = sum(1 for r in rows if "champion" in r and list(r["champion"]) != list(r["candidate"]))
    count = f"{len(rows)} sampled sentences" + (
        f", {differ} where the models disagree (shown first)" if has_champion else ""
    )
    parts += [f"<h2>Sentences: gold, champion, candidate ({count})</h2>", legend(palette)]
    for r in rows:
        tokens, gold_tags = list(r["tokens"]), list(r["gold"])
        gold = spans(gold_tags)
        disagree = "champion" in r and list(r["champion"]) != list(r["candidate"])
        badge = ' <span class="badge">models disagree</span>' if disagree else ""
        lines = [
            f'<div class="sent"><div class="id">{html.escape(str(r.get("id", "")))}{badge}</div>',
            f'<div class="line"><span class="who">gold</span>{render_line(tokens, gold_tags, "gold", palette)}</div>',
        ]
        for who in ("champion", "candidate"):
            if who in r:
                lines.append(
                    f'<div class="line"><span class="who">{who}</span>'
                    f"{render_line(tokens, r[who], who, palette, gold)}</div>"
                )
        parts.append("".join(lines) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
