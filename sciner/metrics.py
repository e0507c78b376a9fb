"""Entity-level evaluation with seqeval (strict IOB2) plus token accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2, Entities, Entity

from sciner.labels import OUTSIDE, repair_bio


@dataclass
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    micro_f1: float
    micro_precision: float
    micro_recall: float
    macro_f1: float
    token_accuracy: float
    per_class: dict[str, ClassScores]
    sentences: int
    gold_entities: int

    def as_flat_metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{name: value}`` for MLflow: micro/macro F1, token accuracy, ``f1_<Class>``."""
        out = {
            f"{prefix}micro_f1": self.micro_f1,
            f"{prefix}micro_precision": self.micro_precision,
            f"{prefix}micro_recall": self.micro_recall,
            f"{prefix}macro_f1": self.macro_f1,
            f"{prefix}token_accuracy": self.token_accuracy,
        }
        out.update({f"{prefix}f1_{name}": s.f1 for name, s in self.per_class.items()})
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """Markdown per-class table."""
        lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for name, s in sorted(self.per_class.items()):
            lines.append(f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.support} |")
        lines.append(
            f"| **micro** | {self.micro_precision:.3f} | {self.micro_recall:.3f} | {self.micro_f1:.3f} | "
            f"{self.gold_entities} |"
        )
        lines.append(f"| **macro** | | | {self.macro_f1:.3f} | |")
        lines.append(f"\ntoken accuracy {self.token_accuracy:.4f} over {self.sentences} sentences")
        return "\n".join(lines)


def evaluate_tags(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], classes: Sequence[str] = ()
) -> Evaluation:
    """Strict IOB2 micro/macro P/R/F1 per class (seqeval) and token accuracy.

    ``classes`` lists types to report even when absent from both gold and predictions (F1 0).
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    gold_l = [repair_bio(list(g)) for g in gold]
    pred_l = [repair_bio(list(p)) for p in pred]
    for i, (g, p) in enumerate(zip(gold_l, pred_l, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    report = classification_report(gold_l, pred_l, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    per_class = {
        name: ClassScores(v["precision"], v["recall"], v["f1-score"], int(v["support"]))
        for name, v in report.items()
        if not name.endswith(" avg")
    }
    for name in classes:
        per_class.setdefault(name, ClassScores(0.0, 0.0, 0.0, 0))
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    supported = [s.f1 for s in per_class.values() if s.support > 0]
    tokens = sum(len(g) for g in gold_l)
    correct = sum(a == b for g, p in zip(gold_l, pred_l, strict=True) for a, b in zip(g, p, strict=True))
    return Evaluation(
        micro_f1=float(micro["f1-score"]),
        micro_precision=float(micro["precision"]),
        micro_recall=float(micro["recall"]),
        macro_f1=float(sum(supported) / len(supported)) if supported else 0.0,
        token_accuracy=correct / tokens if tokens else 0.0,
        per_class=per_class,
        sentences=len(gold_l),
        gold_entities=sum(1 for g in gold_l for t in g if t.startswith("B-")),
    )


def confusion_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, dict[str, int]]:
    """Word-level confusion of entity types (``O`` included): ``counts[gold_type][pred_type]``."""
    counts: dict[str, dict[str, int]] = {}
    for g_seq, p_seq in zip(gold, pred, strict=True):
        for g, p in zip(g_seq, p_seq, strict=True):
            gt = OUTSIDE if g == OUTSIDE else g[2:]
            pt = OUTSIDE if p == OUTSIDE else p[2:]
            counts.setdefault(gt, {}).setdefault(pt, 0)
            counts[gt][pt] += 1
    return counts


ERROR_KINDS = ("exact", "type", "boundary", "boundary_type", "missed", "spurious")
"""What became of each gold entity, and of each prediction that touches none (:func:`entity_errors`):

* ``exact``: predicted with its span and type (a strict true positive);
* ``type``: its exact span predicted with another type;
* ``boundary``: an overlapping prediction of its type, other span;
* ``boundary_type``: only overlapping predictions of other types and spans;
* ``missed``: no predicted entity overlaps it;
* ``spurious`` (counted under the predicted type): a prediction that overlaps no gold entity."""


def entity_errors(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, dict[str, int]]:
    """``counts[entity_type][kind]`` for the kinds of :data:`ERROR_KINDS`, entities read as the strict IOB2
    metric reads them (:func:`evaluate_tags`), so ``exact`` summed over types is its true positives."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    gold_e = Entities([repair_bio(list(g)) for g in gold], IOB2).entities
    pred_e = Entities([repair_bio(list(p)) for p in pred], IOB2).entities
    counts: dict[str, dict[str, int]] = {}

    def add(etype: str, kind: str) -> None:
        row = counts.setdefault(etype, dict.fromkeys(ERROR_KINDS, 0))
        row[kind] += 1

    for golds, preds in zip(gold_e, pred_e, strict=True):
        spans = {(e.start, e.end, e.tag) for e in preds}
        for g in golds:
            overlapping = [p for p in preds if _overlap(p, g)]
            if (g.start, g.end, g.tag) in spans:
                kind = "exact"
            elif not overlapping:
                kind = "missed"
            elif any(p.start == g.start and p.end == g.end for p in overlapping):
                kind = "type"
            elif any(p.tag == g.tag for p in overlapping):
                kind = "boundary"
            else:
                kind = "boundary_type"
            add(g.tag, kind)
        for p in preds:
            if not any(_overlap(p, g) for g in golds):
                add(p.tag, "spurious")
    return counts


def _overlap(a: Entity, b: Entity) -> bool:
    """Whether two entities of one sentence share a word (ends exclusive)."""
    return a.start < b.end and b.start < a.end


def error_markdown(counts: dict[str, dict[str, int]]) -> str:
    """Markdown table of :func:`entity_errors`, a row per type and the total; the share of gold entities
    next to each gold-side kind."""
    total = dict.fromkeys(ERROR_KINDS, 0)
    for row in counts.values():
        for kind in ERROR_KINDS:
            total[kind] += row.get(kind, 0)
    lines = [
        "| type | gold entities | " + " | ".join(ERROR_KINDS) + " |",
        "|---" * (len(ERROR_KINDS) + 2) + "|",
    ]
    for name, row in [*sorted(counts.items()), ("**all**", total)]:
        n_gold = sum(row.get(kind, 0) for kind in ERROR_KINDS if kind != "spurious")
        cells = [_count_cell(row.get(kind, 0), n_gold if kind != "spurious" else 0) for kind in ERROR_KINDS]
        lines.append(f"| {name} | {n_gold} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _count_cell(count: int, of: int) -> str:
    return f"{count} ({count / of:.0%})" if of else str(count)
