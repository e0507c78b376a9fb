"""A port picked free can be taken before the server binds it (by any process opening a connection):
the start is retried on a fresh port instead of failing the caller. Real ``bentoml serve``."""

from __future__ import annotations

import socket

import httpx

from service.process import HOST, ServiceProcess, quiet_env


def test_a_server_whose_port_was_taken_meanwhile_starts_on_a_fresh_one(tiny_model_dir, tmp_path):
    env = quiet_env(tmp_path, SCINER_MODEL_URI=str(tiny_model_dir), SCINER_INTRA_OP_THREADS="1")
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        srv = ServiceProcess(env, tmp_path / "serve.log")
        srv.port, srv.url = taken, f"http://{HOST}:{taken}"  # the race, lost: our pick is someone else's now
        with srv:
            srv.wait("/readyz", timeout=240)
            assert srv.port != taken and srv.port_retries == 1
            assert httpx.get(f"{srv.url}/readyz", timeout=10).status_code == 200
    assert "address already in use" in srv.log_tail(100_000).lower()
