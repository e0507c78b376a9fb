"""What a benchmark's result file records about how it was started."""

from __future__ import annotations

from bench.common import env_prefix, settings_env
from bench.quality_report import command_line


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


def test_settings_variables_become_the_shell_prefix_of_a_command():
    assert env_prefix({"SCINER_DISTILL_ALPHA": "0.2", "SCINER_SEED": "43"}) == (
        "SCINER_DISTILL_ALPHA=0.2 SCINER_SEED=43 "
    )
    assert env_prefix({}) == ""


def test_the_quality_table_shows_a_runs_command_after_its_settings_variables_and_older_runs_without():
    run = {"command": "bench/quality.py --name new", "at": "2026-12-02T00:00:00+00:00", "machine": "x86_64"}

    assert command_line("new", {**run, "env": {"SCINER_SEED": "43"}}).startswith(
        "- `new`: `SCINER_SEED=43 python bench/quality.py --name new` (2026-12-02"
    )
    assert command_line("old", run).startswith("- `old`: `python bench/quality.py --name new` (")
