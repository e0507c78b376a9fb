"""The example Job that trains the MPNet teacher on a GPU node (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S = Path(__file__).resolve().parents[1] / "k8s"
JOB = yaml.safe_load((K8S / "examples" / "teacher-job.yaml").read_text())


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_the_teacher_job_matches_the_kubernetes_schema(version):
    kubernetes_validate.validate(JOB, version, strict=True)


def test_it_takes_one_gpu_as_a_limit_and_runs_as_the_sciner_user():
    pod = JOB["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    assert pod["securityContext"]["runAsUser"] == 1034 and pod["securityContext"]["runAsNonRoot"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SCINER_DEVICE"] == "cuda"
    assert env["SCINER_HEAD_LR_FACTOR"] == "20"  # MPNet learns nothing in its first epochs without it
    assert env["SCINER_CROWD_LAYER"] == "false"  # the crowd layer costs MPNet 1.5 points (docs/quality.md)


def test_it_writes_to_the_retrainers_volume():
    pvc = yaml.safe_load((K8S / "base" / "retrainer" / "pvc.yaml").read_text())
    (volume,) = JOB["spec"]["template"]["spec"]["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
