"""MLflow pyfunc flavour of a sciner model (models-from-code: an ONNX session cannot be pickled).

``mlflow.pyfunc.load_model("models:/sciner@champion").predict(["text", ...])`` returns one dict
per text with character-offset entities, through the same :class:`~sciner.predictor.Predictor`
the service runs.
"""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel

import mlflow

MODEL_DIR_ARTIFACT = "model_dir"


class SciNERModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from sciner.predictor import Predictor

        self.predictor = Predictor.from_model_dir(context.artifacts[MODEL_DIR_ARTIFACT])

    def predict(self, context: Any, model_input: Any, params: dict | None = None) -> list[dict]:
        texts = list(model_input["text"]) if hasattr(model_input, "columns") else list(model_input)
        results = self.predictor.predict_texts([str(t) for t in texts])
        return [{"entities": [e.model_dump() for e in r.entities], "windows": r.windows} for r in results]


mlflow.models.set_model(SciNERModel())
