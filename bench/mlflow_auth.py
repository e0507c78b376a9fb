"""What MLflow's basic-auth costs a request, with and without its credential cache.

    .venv/bin/python bench/mlflow_auth.py --out bench/results/mlflow-auth.json

Starts ``mlflow/docker-entrypoint.sh`` twice on loopback ports, as the image runs it (sqlite store,
one worker), once with ``MLFLOW_AUTH_CACHE_SECONDS=0`` (MLflow's own default: the password hash is
checked on every request) and once with the entrypoint's default (60 s). Then the same authenticated
requests go to both servers interleaved (one to each in turn, so the machine's noise falls on both):
the retrainer's and the API's typical calls, an alias read (what the API polls) and a registered-model
search. Reports the median latency per server and the ratio; a registration is timed the same way.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, machine, now
from service.mlflow_process import start_auth_entrypoint
from service.process import stop_process_group

ADMIN_PW = "bench-admin-password-0123456"
MODEL = "sciner-bench"


def call(url: str, method: str, path: str, body: dict | None = None) -> tuple[float, dict]:
    """One authenticated request as the admin (it must succeed): its latency in seconds and its answer."""
    token = base64.b64encode(f"admin:{ADMIN_PW}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{url}{path}",
        data=data,
        method=method,
        headers={"authorization": f"Basic {token}", "content-type": "application/json"},
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: HTTP {exc.code} {exc.read().decode(errors='replace')[:500]}") from exc
    return time.perf_counter() - t0, answer


def new_run(url: str, experiment: str) -> str:
    _, exp = call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": experiment})
    _, run = call(url, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp["experiment_id"]})
    return run["run"]["info"]["run_id"]


def new_version(url: str, run_id: str) -> str:
    body = {"name": MODEL, "source": f"runs:/{run_id}/model", "run_id": run_id}
    return call(url, "POST", "/api/2.0/mlflow/model-versions/create", body)[1]["model_version"]["version"]


def seed(url: str) -> None:
    """A registered model with one version under alias ``champion`` (what the API polls)."""
    call(url, "POST", "/api/2.0/mlflow/registered-models/create", {"name": MODEL})
    v = new_version(url, new_run(url, "bench-seed"))
    call(url, "POST", "/api/2.0/mlflow/registered-models/alias", {"name": MODEL, "alias": "champion", "version": v})


def registration(url: str, i: int) -> float:
    """A round's registration in requests (experiment, run, params/metrics/tags, version, aliases): seconds."""
    t0 = time.perf_counter()
    run_id = new_run(url, f"bench-{i}")
    for k in range(4):
        batch = {
            "run_id": run_id,
            "metrics": [{"key": f"m{k}_{j}", "value": 0.5, "timestamp": 0, "step": 0} for j in range(20)],
            "params": [{"key": f"p{k}_{j}", "value": "x"} for j in range(5)],
            "tags": [{"key": f"t{k}", "value": "y"}],
        }
        call(url, "POST", "/api/2.0/mlflow/runs/log-batch", batch)
    v = new_version(url, run_id)
    for alias in ("challenger", "champion"):
        call(url, "POST", "/api/2.0/mlflow/registered-models/alias", {"name": MODEL, "alias": alias, "version": v})
    call(url, "POST", "/api/2.0/mlflow/runs/update", {"run_id": run_id, "status": "FINISHED"})
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=60, help="interleaved requests of each kind per server")
    ap.add_argument("--registrations", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "mlflow-auth.json")
    args = ap.parse_args()
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    with tempfile.TemporaryDirectory(prefix="sciner-bench-auth-") as tmp:
        try:
            for name, seconds in (("no_cache", 0), ("cache_60s", 60)):
                servers[name] = start_auth_entrypoint(
                    Path(tmp) / name, ADMIN_PW, timeout=180, MLFLOW_AUTH_CACHE_SECONDS=str(seconds)
                )
                seed(servers[name][1])
            alias = f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion"
            search = "/api/2.0/mlflow/registered-models/search?max_results=10"
            timings: dict[str, dict[str, list[float]]] = {
                n: {"alias": [], "search": [], "register": []} for n in servers
            }
            for _ in range(args.requests):
                for name, (_, url) in servers.items():
                    timings[name]["alias"].append(call(url, "GET", alias)[0])
                    timings[name]["search"].append(call(url, "GET", search)[0])
            for i in range(args.registrations):
                for name, (_, url) in servers.items():
                    timings[name]["register"].append(registration(url, i))
        finally:
            for proc, _ in servers.values():
                stop_process_group(proc, grace=10)
    medians = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in timings.items()}
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "when": now(),
        "requests_per_kind": args.requests,
        "registrations": args.registrations,
        "median_s": medians,
        "ratio_no_cache_over_cache": {k: medians["no_cache"][k] / medians["cache_60s"][k] for k in medians["no_cache"]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
