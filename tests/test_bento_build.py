"""`bentoml build` for the CPU and GPU bentofiles, inspected offline (no Docker engine here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BENTOML = Path(sys.executable).with_name("bentoml")
pytestmark = pytest.mark.slow


def build(bentofile: str, home: Path, version: str) -> Path:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [str(BENTOML), "build", "-f", bentofile, "--version", version],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return home / "bentos" / "sciner" / version


@pytest.fixture(scope="module")
def bentos(tmp_path_factory) -> dict[str, Path]:
    home = tmp_path_factory.mktemp("bentoml_home")
    return {"cpu": build("bentofile.yaml", home, "cpu-test"), "gpu": build("bentofile.gpu.yaml", home, "gpu-test")}


def requirement_pins(bento: Path) -> dict[str, str]:
    pins = {}
    for line in (bento / "env" / "python" / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"unpinned requirement {line!r}"
        pins[name.lower()] = version
    return pins


def test_bento_holds_the_service_code_and_no_data_or_weights(bentos):
    src = bentos["cpu"] / "src"
    for rel in ("service/app.py", "sciner/predictor.py", "training/cli.py", "data/seed/train.jsonl"):
        assert (src / rel).is_file(), rel
    files = [p for p in src.rglob("*") if p.is_file()]
    for p in files:
        rel = p.relative_to(src).as_posix()
        assert not rel.startswith(("tests/", "bench/", "var/", "k8s/", ".venv/", "mlflow/")), rel
        assert p.suffix not in {".onnx", ".safetensors", ".bin", ".pt", ".db"}, rel
    assert sum(p.stat().st_size for p in files) < 2_000_000


def test_bento_exposes_the_extraction_apis(bentos):
    spec = yaml.safe_load((bentos["cpu"] / "bento.yaml").read_text())
    routes = {r["route"] for r in spec["schema"]["routes"]}
    assert {"/extract", "/extract_batch"} <= routes  # GET /model is a plain route: see the service tests
    assert spec["service"] == "service.app:SciNER"


def test_cpu_image_pins_cpu_packages_only(bentos):
    pins = requirement_pins(bentos["cpu"])
    assert pins["onnxruntime"] == "1.31.1" and "onnxruntime-gpu" not in pins
    assert pins["torch"] == "2.13.0+cpu"
    assert pins["bentoml"] == "1.4.39" and pins["mlflow"] == "3.17.2"
    assert not {"pytest", "hypothesis", "schemathesis", "ruff"} & set(pins)


def test_gpu_image_has_cuda_base_and_onnxruntime_gpu_never_with_onnxruntime(bentos):
    pins = requirement_pins(bentos["gpu"])
    assert "onnxruntime-gpu" in pins and "onnxruntime" not in pins
    dockerfile = (bentos["gpu"] / "env" / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:12\.6", dockerfile, re.M), dockerfile[:500]


def test_generated_dockerfile_installs_pinned_packages_then_runs_as_bentoml(bentos):
    dockerfile = (bentos["cpu"] / "env" / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    install = dockerfile.index("pip install -r")
    assert dockerfile.index("ENV UV_INDEX_STRATEGY") < install
    assert "ENV SCINER_HOME" in dockerfile and "ENV HF_HUB_OFFLINE" in dockerfile
    assert dockerfile.index("script__") > install  # the `sciner` command for the retrainer
    assert re.search(r"^USER bentoml", dockerfile, re.M)
    assert ":latest" not in dockerfile


def test_bento_requirements_match_the_pinned_environment():
    proc = subprocess.run(
        [sys.executable, "scripts/bento_requirements.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
