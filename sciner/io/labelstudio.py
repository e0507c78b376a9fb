"""Label Studio JSON: import span annotations as gold sentences; export predictions as
pre-annotations (character offsets and scores) for human correction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sciner.io.errors import DataError
from sciner.labels import OUTSIDE
from sciner.model_dir import atomic_write_text
from sciner.pretokenize import split_sentences
from sciner.records import Entity, Sentence, Token

FROM_NAME = "label"
TO_NAME = "text"


@dataclass(slots=True)
class CharSpan:
    start: int
    end: int
    label: str


def label_config(labels: Sequence[str]) -> str:
    """The Label Studio labeling config matching :func:`export_tasks`."""
    inner = "\n".join(f'    <Label value="{name}"/>' for name in labels)
    return (
        f'<View>\n  <Labels name="{FROM_NAME}" toName="{TO_NAME}">\n{inner}\n  </Labels>\n'
        f'  <Text name="{TO_NAME}" value="$text"/>\n</View>\n'
    )


def spans_to_bio(tokens: Sequence[Token], spans: Sequence[CharSpan]) -> list[str]:
    """BIO tags for tokens covered by character spans (a token belongs to a span it overlaps)."""
    tags = [OUTSIDE] * len(tokens)
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        inside = [i for i, t in enumerate(tokens) if t.start < span.end and t.end > span.start]
        if not inside or any(tags[i] != OUTSIDE for i in inside):
            continue  # empty or overlapping an earlier span: the first (longest) wins
        tags[inside[0]] = f"B-{span.label}"
        for i in inside[1:]:
            tags[i] = f"I-{span.label}"
    return tags


def _load_tasks(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(path, None, "expected a list of Label Studio tasks")
    return data


def task_text(task: object, path: Path, index: int) -> str:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        raise DataError(path, None, f"task {index}: missing 'data' object")
    text = task["data"].get("text")
    if not isinstance(text, str):
        raise DataError(path, None, f"task {index}: 'data.text' must be a string")
    return text


def _task_spans(task: dict, path: Path, index: int, text: str) -> list[CharSpan] | None:
    """Spans of the task's last non-cancelled annotation; ``None`` if it has none."""
    annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not annotations:
        return None
    spans = []
    for item in annotations[-1].get("result") or []:
        value = item.get("value") or {}
        labels = value.get("labels") or []
        start, end = value.get("start"), value.get("end")
        if not labels or not isinstance(start, int) or not isinstance(end, int):
            continue
        if not 0 <= start < end <= len(text):
            raise DataError(path, None, f"task {index}: span [{start}, {end}) outside the text")
        spans.append(CharSpan(start, end, str(labels[0])))
    return spans


def read_labelstudio(path: str | Path) -> list[Sentence]:
    """Annotated tasks -> gold sentences (tasks without an annotation are skipped)."""
    path = Path(path)
    sentences: list[Sentence] = []
    for index, task in enumerate(_load_tasks(path)):
        text = task_text(task, path, index)
        spans = _task_spans(task, path, index, text)
        if spans is None:
            continue
        task_id = str(task.get("id", index))
        for k, sent in enumerate(split_sentences(text)):
            tags = spans_to_bio(sent, spans)
            sentences.append(
                Sentence(
                    id=f"ls-{task_id}#s{k}",
                    tokens=[t.text for t in sent],
                    tags=tags,
                    doc_id=f"ls-{task_id}",
                    source=f"{path}#task{index}",
                )
            )
    return sentences


def prediction_task(text: str, entities: Sequence[Entity], model_version: str, meta: dict | None = None) -> dict:
    """One Label Studio task with the model's entities as a pre-annotation."""
    result = [
        {
            "id": f"e{i}",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "labels",
            "value": {"start": e.start, "end": e.end, "text": e.text, "labels": [e.label]},
            "score": e.score,
        }
        for i, e in enumerate(entities)
    ]
    score = min((e.score for e in entities), default=1.0)
    return {
        "data": {"text": text, **(meta or {})},
        "predictions": [{"model_version": model_version, "score": score, "result": result}],
    }


def write_tasks(path: str | Path, tasks: list[dict]) -> None:
    atomic_write_text(Path(path), json.dumps(tasks, ensure_ascii=False, indent=1))
