"""The pure modules stay pure: importing one pulls in no database, server, registry or model runtime.

Each import runs in a fresh interpreter, so what an earlier test imported cannot hide a new dependency.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "bentoml", "mlflow", "torch", "onnxruntime", "transformers", "service.swap")


@pytest.mark.parametrize(
    "module",
    [
        "sciner.paper_records",  # validation of ingested papers: no database
        "sciner.model_uri",  # the model source, shared by the service and the CLI
        "service.swap_plan",  # the reload decision and back-off
        "service.dispatcher",  # the BentoML reach-in takes BentoML's objects, does not import it
        "training.model_ref",  # the CLI's model reference resolves without the service's swap module
        "training.held_out",  # whether the gate may judge an outside model: metadata only
    ],
)
def test_a_pure_module_imports_no_heavy_dependency(module: str) -> None:
    probe = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} pulled in {out}"
