"""What a benchmark's result file records about how it was started."""

from __future__ import annotations

from bench.common import settings_env
from bench.quality_report import env_prefix


def test_a_result_records_the_settings_variables_it_ran_with_but_no_credentials(monkeypatch):
    monkeypatch.setenv("SCINER_SEED", "43")
    monkeypatch.setenv("SCINER_DISTILL_ALPHA", "0.2")
    monkeypatch.setenv("SCINER_API_WRITE_TOKENS", "secret-token")
    monkeypatch.setenv("SCINER_MLFLOW_TRACKING_URI", "http://user:pw@127.0.0.1:5000")
    monkeypatch.setenv("OTHER_SEED", "7")

    env = settings_env()

    assert env["SCINER_SEED"] == "43"
    assert env["SCINER_DISTILL_ALPHA"] == "0.2"
    assert not {"SCINER_API_WRITE_TOKENS", "SCINER_MLFLOW_TRACKING_URI", "OTHER_SEED"} & set(env)


def test_the_quality_table_shows_a_runs_settings_variables_before_its_command():
    assert env_prefix({"env": {"SCINER_DISTILL_ALPHA": "0.2", "SCINER_SEED": "43"}}) == (
        "SCINER_DISTILL_ALPHA=0.2 SCINER_SEED=43 "
    )
    assert env_prefix({"command": "bench/quality.py --name old"}) == ""
