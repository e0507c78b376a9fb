"""MLflow pyfunc flavour of a sciner model (models-from-code: an ONNX session cannot be pickled).

``mlflow.pyfunc.load_model("models:/sciner@champion").predict({"text": [...]})`` (or a DataFrame with a
``text`` column) returns one dict per text, ``{"entities": [{start, end, text, label, score}], "windows"}``
in character offsets, through the same :class:`~sciner.predictor.Predictor` the service runs. The
signature and input example logged with it are in :mod:`sciner.mlflow_card`. Without ``dst_path=``,
MLflow downloads the version (~110 MB) into a temporary folder it never removes; pass a folder to reuse.
"""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel

import mlflow
from sciner.mlflow_card import MODEL_DIR_ARTIFACT, input_texts


class SciNERModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from sciner.predictor import Predictor

        self.predictor = Predictor.from_model_dir(context.artifacts[MODEL_DIR_ARTIFACT])

    # ``model_input`` is left unannotated on purpose: MLflow 3 reads the annotation as an input schema (and
    # warns that ``Any`` is not one); the logged signature (:mod:`sciner.mlflow_card`) is the schema.
    def predict(self, context: Any, model_input, params: dict | None = None) -> list[dict]:  # noqa: ANN001
        results = self.predictor.predict_texts(input_texts(model_input))
        return [{"entities": [e.model_dump() for e in r.entities], "windows": r.windows} for r in results]


mlflow.models.set_model(SciNERModel())
