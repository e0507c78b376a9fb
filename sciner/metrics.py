"""Entity-level evaluation with seqeval (strict IOB2) plus token accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

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
