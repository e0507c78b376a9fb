"""``scripts/k8s-ops.sh`` picks the way to run an operator command that works in the deployed
variant: ``kubectl exec deploy/sciner-retrainer`` with the scheduler Deployment, a one-off Job from
the CronJob's template (args replaced) with the retrain-cronjob component. A stand-in ``kubectl``
on PATH records what the script asks of the cluster."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "k8s-ops.sh"

FAKE_KUBECTL = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_DIR/calls"
args="$*"
case "$args" in
  *"get deployment/sciner-retrainer"*) exit "$FAKE_NO_DEPLOYMENT" ;;
  *"get cronjob/sciner-retrain"*) exit 0 ;;
  *" exec "*) exit 0 ;;
  *"create job"*"--dry-run=client"*) cat "$FAKE_DIR/job.json" ;;
  *"create -f -"*) cat > "$FAKE_DIR/created.json" ;;
  *"get job/"*"Complete"*) echo True ;;
  *"get job/"*"Failed"*) echo "" ;;
  *"logs job/"*) echo "round finished" ;;
  *) echo "unexpected: $args" >&2; exit 2 ;;
esac
"""

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "x"},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "retrainer",
                        "args": ["sciner", "retrain", "--once"],
                        "startupProbe": {"exec": {"command": ["sciner", "healthcheck"]}},
                        "livenessProbe": {"exec": {"command": ["sciner", "healthcheck"]}},
                    }
                ]
            }
        }
    },
}


def run_ops(tmp_path: Path, has_deployment: bool, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    (tmp_path / "job.json").write_text(json.dumps(JOB))
    env = {
        **os.environ,
        "KUBECTL": str(kubectl),
        "FAKE_DIR": str(tmp_path),
        "FAKE_NO_DEPLOYMENT": "0" if has_deployment else "1",
        "PROMOTED_BY": "ops",
    }
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["bootstrap"], "sciner retrain --once"),
        (["rollback"], "sciner rollback"),
        (["promote", "7"], "sciner promote --version 7 --by ops"),
        (["promote", "7", "hotfix"], "sciner promote --version 7 --by ops --reason hotfix"),
    ],
)
def test_with_the_scheduler_deployment_it_execs_in_the_retrainer(tmp_path, command, expected):
    proc = run_ops(tmp_path, True, *command)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[-1] == f"-n sciner exec deploy/sciner-retrainer -- {expected}"


@pytest.mark.parametrize(
    ("command", "args", "probes"),
    [
        (["bootstrap"], ["sciner", "retrain", "--once"], True),
        (["rollback"], ["sciner", "rollback"], False),
        (
            ["promote", "7", "bad v8"],
            ["sciner", "promote", "--version", "7", "--by", "ops", "--reason", "bad v8"],
            False,
        ),
    ],
)
def test_with_the_cronjob_it_runs_a_job_from_the_cronjob_template(tmp_path, command, args, probes):
    proc = run_ops(tmp_path, False, *command)
    assert proc.returncode == 0, proc.stderr
    assert "round finished" in proc.stdout
    calls = (tmp_path / "calls").read_text()
    assert f"create job sciner-{command[0]}-" in calls and "--from=cronjob/sciner-retrain" in calls
    container = json.loads((tmp_path / "created.json").read_text())["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == args
    assert ("livenessProbe" in container) is probes


def test_usage_errors(tmp_path):
    assert run_ops(tmp_path, True).returncode == 64
    assert run_ops(tmp_path, True, "promote").returncode == 64
