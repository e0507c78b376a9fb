"""The service serves only gated versions: a real MLflow server (sqlite) and a real BentoML service on
loopback. ``champion`` moved around the gate (a raw registry call) to a version the gate rejected is
not served, ``/model`` says why and ``/metrics`` counts it; once ``sciner promote`` records who and
why, the service swaps it in."""

from __future__ import annotations

import httpx
import pytest

from mlflow import MlflowClient
from sciner.registry import register_model_dir, set_alias
from sciner.settings import Settings
from service.process import quiet_env, ready_service
from tests.test_service_swap import mlflow_url, wait_for  # noqa: F401 (fixture)
from training.aliases import promote_version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODEL_NAME = "sciner-gate-test"
TEXT = "We fine-tune BERT on SQuAD and reach 90.1 F1 ."


@pytest.fixture(scope="module")
def registry_settings(mlflow_url, tmp_path_factory):  # noqa: F811
    return Settings(
        mlflow_tracking_uri=mlflow_url,
        registered_model_name=MODEL_NAME,
        experiment_name="gate-test",
        home=tmp_path_factory.mktemp("registry-home"),
    )


@pytest.fixture(scope="module")
def v1(registry_settings, tiny_model_dir):
    rv = register_model_dir(
        registry_settings, tiny_model_dir, run_name="v1", tags={"decision": "promoted", "promoted_by": "bootstrap"}
    )
    set_alias(registry_settings, "champion", rv.version)
    return rv


@pytest.fixture(scope="module")
def service(v1, mlflow_url, tmp_path_factory):  # noqa: F811
    home = tmp_path_factory.mktemp("svc-gate")
    env = quiet_env(
        home,
        SCINER_MLFLOW_TRACKING_URI=mlflow_url,
        SCINER_REGISTERED_MODEL_NAME=MODEL_NAME,
        SCINER_POLL_SECONDS="1",
        SCINER_INTRA_OP_THREADS="1",
    )
    env.pop("SCINER_MODEL_URI", None)  # follow models:/<name>@champion
    env.pop("SCINER_SERVE_ONLY_GATED", None)  # the default: on
    with ready_service(env, home / "serve.log") as srv:
        yield srv


def test_the_gated_champion_serves_with_its_record(service, v1):
    info = httpx.get(f"{service.url}/model").json()
    assert info["version"] == v1.version and info["ready"]
    assert info["promotion"] == f"v{v1.version}: promoted by the gate (bootstrap)"
    assert info["refused_version"] is None and info["refusals"] == 0


def test_a_version_moved_to_champion_around_the_gate_is_not_served(service, v1, registry_settings, tiny_model_dir):
    reason = "Not promoted: micro-F1 0.0000 vs champion v1 0.4100 (-0.4100)."
    v2 = register_model_dir(
        registry_settings, tiny_model_dir, run_name="v2-rejected", tags={"decision": "rejected", "reason": reason}
    )
    # one registry call, as anyone with access could make it: no gate, no record
    MlflowClient(registry_settings.mlflow_tracking_uri).set_registered_model_alias(MODEL_NAME, "champion", v2.version)
    with httpx.Client(base_url=service.url, timeout=30) as c:
        info = wait_for(lambda: (i := c.get("/model").json())["refused_version"] == v2.version and i, timeout=60)
        assert info["version"] == v1.version and info["ready"] is True and info["swaps"] == 0
        assert info["refused_reason"] == (
            f"v{v2.version} was not promoted (the gate said 'rejected') and no `sciner promote` recorded who and why"
        )
        assert info["refusals"] == 1
        r = c.post("/extract", json={"text": TEXT})
        assert r.status_code == 200 and r.json()["model_version"] == v1.version
        assert "sciner_model_refused_total 1.0" in c.get("/metrics").text
    log = service.log_tail(20000)
    assert '"event": "model_refused"' in log and log.count('"event": "model_refused"') == 1  # once, not per poll


def test_a_recorded_manual_promotion_is_served(service, registry_settings):
    refused = httpx.get(f"{service.url}/model").json()["refused_version"]
    assert refused is not None
    move = promote_version(registry_settings, refused, reason="reviewed side_by_side.md: acceptable", by="alice")
    assert move.after == refused
    with httpx.Client(base_url=service.url, timeout=30) as c:
        info = wait_for(lambda: (i := c.get("/model").json())["version"] == refused and i, timeout=120)
        assert info["promotion"] == f"v{refused}: promoted by hand by alice: reviewed side_by_side.md: acceptable"
        assert info["refused_version"] is None and info["swaps"] == 1
    tags = MlflowClient(registry_settings.mlflow_tracking_uri).get_model_version(MODEL_NAME, refused).tags
    assert tags["decision"] == "rejected"  # the gate's verdict stays on record next to the human one
    assert tags["decision_override"] == "promoted_manually" and tags["promoted_by"] == "alice"
