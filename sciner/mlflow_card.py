"""What MLflow is told about a sciner model: the pyfunc signature, an input example, and the registered
model's description and tags (shown on its page in the UI).

Signature: a ``text`` column of strings in; per text, ``entities`` (objects with ``start``, ``end``,
``text``, ``label``, ``score``; character offsets) and ``windows`` out. With it, ``mlflow models predict
-m models:/sciner@champion --env-manager local -i input.json -t json`` and the model's page know what
the model takes and returns.
"""

from __future__ import annotations

from typing import Any

from sciner.labels import ENTITY_TYPES

MODEL_DIR_ARTIFACT = "model_dir"  # the pyfunc's artifact: the sciner model folder
INPUT_EXAMPLE_TEXTS = ["We fine-tune BERT with a learning rate of 2e-5 and reach 84.6 accuracy on MNLI."]
REVIEW_GUIDE = "mlflow/REVIEW.md in the sciner repository"


def signature():  # noqa: ANN201 - mlflow.models.ModelSignature, imported lazily
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, Object, Property, Schema

    entity = Object(
        [
            Property("start", DataType.long),
            Property("end", DataType.long),
            Property("text", DataType.string),
            Property("label", DataType.string),
            Property("score", DataType.double),
        ]
    )
    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string, name="text")]),
        outputs=Schema([ColSpec(Array(entity), name="entities"), ColSpec(DataType.long, name="windows")]),
    )


def input_example():  # noqa: ANN201 - pandas.DataFrame
    import pandas as pd

    return pd.DataFrame({"text": INPUT_EXAMPLE_TEXTS})


def registered_model_description(labels: tuple[str, ...] = ENTITY_TYPES) -> str:
    return (
        "Scientific entity recognition for NLP papers (ACL SciNER scheme): character-offset spans with a "
        f"confidence for {', '.join(labels)}. Each version is an ONNX model (int8 and fp32) behind a pyfunc: "
        "input a `text` column, output `entities` (start, end, text, label, score) and `windows` per text.\n\n"
        "Versions come from the self-training loop: every round auto-annotates new papers with the champion, "
        "trains a model on gold + auto-annotated data whose weights, averaged with the champion's, make the "
        "candidate (tag `soup`), scores candidate and champion on the same gold "
        "evaluation split, and moves the `champion` alias (what the API serves) only if the gate passes; "
        "`challenger` is the latest candidate either way. A model trained outside the loop enters through "
        "the same gate (`sciner challenge`, tag `kind` = challenge). Each version's description opens with "
        "the verdict; "
        "its run holds `review/side_by_side.html` (start there), per-class scores, the confusion matrix, "
        "`decision.json` and `lineage.json`.\n\n"
        f"How to review, roll back or promote by hand: {REVIEW_GUIDE} (`sciner rollback`, "
        "`sciner promote --version N --reason ...`)."
    )


def registered_model_tags(labels: tuple[str, ...] = ENTITY_TYPES) -> dict[str, str]:
    return {
        "task": "token-classification (NER), character offsets",
        "labels": ",".join(labels),
        "serving_alias": "champion",
        "promotion": "gate on gold micro-F1 (see each version's decision.json)",
        "review_guide": REVIEW_GUIDE,
    }


def input_texts(model_input: Any) -> list[str]:
    """The texts of any input MLflow hands over: a DataFrame (``text`` column, or its first), a dict of
    lists, a list, a string; a cell holding a list (``{"text": [...]}`` arrives as one row) is flattened."""
    if hasattr(model_input, "columns"):
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        values = list(model_input[column])
    elif isinstance(model_input, dict):
        values = list(model_input.get("text", next(iter(model_input.values()), [])))
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    texts: list[str] = []
    for value in values:
        if isinstance(value, str):
            texts.append(value)
        elif hasattr(value, "__iter__"):
            texts.extend(str(v) for v in value)
        else:
            texts.append(str(value))
    return texts
