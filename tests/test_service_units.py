"""The service's pure logic, without a server: request checks, batching helpers, the model holder
and its atomic swap, the alias-change decision with back-off, GPU readiness, the request guard."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sciner.backends import CPU, CUDA, choose_providers
from sciner.model_uri import ModelSource, parse_model_uri
from sciner.registry import RegisteredVersion
from sciner.settings import Settings
from service.batching import char_budget_chunks, split_parts
from service.downloads import file_lock, prune_downloads
from service.metrics import ServiceMetrics
from service.middleware import RequestGuard, media_type_ok
from service.schemas import (
    ExtractBatchRequest,
    ExtractRequest,
    RequestError,
    check_text,
    check_texts,
)
from service.state import LoadedModel, ModelHolder, gpu_problem
from service.swap import Swapper, gold_f1_of, load_model, predictor_settings
from service.swap_plan import Failure, backoff_seconds, plan

SETTINGS = Settings(max_chars=20, max_batch_texts=3, poll_seconds=1.0, load_retry_max_seconds=8.0)


# --- request checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", " ", " \n\t "])
def test_blank_text_is_422(text):
    with pytest.raises(RequestError) as e:
        check_text(text, SETTINGS)
    assert e.value.status == HTTPStatus.UNPROCESSABLE_ENTITY and "empty" in e.value.message


def test_text_over_the_limit_is_413_and_at_the_limit_is_fine():
    check_text("x" * 20, SETTINGS)
    with pytest.raises(RequestError) as e:
        check_text("x" * 21, SETTINGS)
    assert e.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE and "SCINER_MAX_CHARS" in e.value.message


def test_unpaired_surrogate_is_422_not_a_crash():
    with pytest.raises(RequestError) as e:
        check_text("ab\ud800c", SETTINGS)
    assert e.value.status == HTTPStatus.UNPROCESSABLE_ENTITY and "offset 2" in e.value.message


@pytest.mark.parametrize(
    ("texts", "status", "fragment"),
    [
        ([], HTTPStatus.UNPROCESSABLE_ENTITY, "at least one"),
        (["a", "b", "c", "d"], HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "SCINER_MAX_BATCH_TEXTS"),
        (["x" * 15, "y" * 15], HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "in all"),
        (["fine", "  "], HTTPStatus.UNPROCESSABLE_ENTITY, "texts[1]"),
    ],
)
def test_batch_checks(texts, status, fragment):
    with pytest.raises(RequestError) as e:
        check_texts(texts, SETTINGS)
    assert e.value.status == status and fragment in e.value.message


def test_the_schema_documents_the_limits():
    text = ExtractRequest.model_json_schema()["properties"]["text"]
    assert text["minLength"] == 1 and text["maxLength"] >= 1
    texts = ExtractBatchRequest.model_json_schema()["properties"]["texts"]
    assert texts["maxItems"] >= 1 and texts["items"]["type"] == "string"


def test_char_budget_chunks_cover_everything_once_shortest_first():
    lengths = [5, 50, 1, 30, 7, 8, 500]
    chunks = char_budget_chunks(lengths, 40)
    flat = [i for c in chunks for i in c]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    for c in chunks:
        assert len(c) == 1 or sum(lengths[i] for i in c) <= 40
    assert [6] in chunks  # the huge text is alone
    assert char_budget_chunks([], 10) == []


def test_split_parts_balances_sorted_texts_across_threads():
    lengths = [50, 10, 40, 20, 30, 60, 5000]
    plan = split_parts(lengths, 2, 100)
    assert len(plan) == 2
    flat = sorted(i for part in plan for chunk in part for i in chunk)
    assert flat == list(range(len(lengths)))
    sizes = [sum(lengths[i] for chunk in part for i in chunk if lengths[i] < 1000) for part in plan]
    assert abs(sizes[0] - sizes[1]) <= 30  # similar work, the outlier aside
    for part in plan:
        for chunk in part:
            assert len(chunk) == 1 or sum(lengths[i] for i in chunk) <= 100
    assert split_parts([7], 4, 100) == [[[0]]]  # never more parts than texts
    assert split_parts([], 2, 100) == []
    assert split_parts([1, 2, 3], 1, 100) == [[[0, 1, 2]]]


# --- the model holder -------------------------------------------------------------------------
def fake_model(version: str, gpu: str | None = None) -> LoadedModel:
    return LoadedModel(
        predictor=None,  # type: ignore[arg-type]
        name="sciner",
        version=version,
        alias="champion",
        source="registry",
        uri="models:/sciner@champion",
        model_dir=Path("/nowhere"),
        labels=["O"],
        loaded_at=datetime.now(UTC),
        provider=CPU,
        gpu_problem=gpu,
    )


def test_holder_is_not_ready_until_a_model_is_loaded_and_says_why():
    holder = ModelHolder()
    assert holder.readiness() == (False, "no model loaded yet")
    holder.record_failure("registry down")
    ready, reason = holder.readiness()
    assert not ready and "registry down" in reason
    assert holder.swap(fake_model("1")) is None
    assert holder.readiness() == (True, None) and holder.swaps == 0 and holder.last_error is None


def test_swap_is_atomic_and_requests_in_flight_keep_their_model():
    holder = ModelHolder()
    holder.swap(fake_model("1"))
    in_flight = holder.current  # what a request grabbed before the swap
    old = holder.swap(fake_model("2"))
    assert old is in_flight and in_flight.version == "1"
    assert holder.current.version == "2" and holder.swaps == 1


def test_readers_never_see_a_missing_model_during_swaps():
    holder = ModelHolder()
    holder.swap(fake_model("0"))
    seen: set[str] = set()
    missing: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            model = holder.current
            if model is None:
                missing.append(1)
            else:
                seen.add(model.version)
            time.sleep(0)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    i = 0
    deadline = time.monotonic() + 10
    while (len(seen) < 5 or i < 200) and time.monotonic() < deadline:
        i += 1
        holder.swap(fake_model(str(i)))
        time.sleep(0)
    stop.set()
    for t in threads:
        t.join()
    assert missing == [] and holder.swaps == i and len(seen) >= 5


def test_gpu_fallback_makes_the_holder_not_ready_with_the_reason():
    holder = ModelHolder()
    holder.swap(fake_model("1", gpu="GPU demanded but fell back"))
    assert holder.readiness() == (False, "GPU demanded but fell back")


# --- GPU readiness from provider lists --------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "require", "requested", "active", "available", "expect"),
    [
        ("auto", False, [CPU], CPU, [CPU], None),  # CPU host, nothing demanded
        ("auto", False, [CUDA, CPU], CPU, [CUDA, CPU], None),  # fell back, but not demanded
        ("auto", True, [CUDA, CPU], CUDA, [CUDA, CPU], None),  # demanded and on CUDA
        ("cuda", False, [CUDA, CPU], CUDA, [CUDA, CPU], None),
        ("auto", True, [CUDA, CPU], CPU, [CUDA, CPU], "fell back to CPUExecutionProvider"),
        ("cuda", False, [CUDA, CPU], CPU, [CUDA, CPU], "failed to initialise"),
        ("cuda", False, [CPU], CPU, [CPU], "not available in this onnxruntime build"),
        ("auto", True, [CPU], CPU, ["AzureExecutionProvider", CPU], "not available"),
        ("cpu", True, [CPU], CPU, [CUDA, CPU], "only CPUExecutionProvider was requested"),
        ("auto", True, [], "torch:cpu", [CPU], "PyTorch fallback runs on cpu"),
        ("auto", True, [], "torch:cuda", [CPU], None),
    ],
)
def test_gpu_problem(device, require, requested, active, available, expect):
    problem = gpu_problem(device, require, requested, active, available)
    if expect is None:
        assert problem is None
    else:
        assert problem is not None and expect in problem and "GPU demanded" in problem


def test_gpu_problem_with_the_predictors_own_provider_choice_on_a_cpu_host():
    available = [CPU]  # what a CPU-only onnxruntime reports
    requested = choose_providers("cuda", available)
    assert requested == [CPU]
    assert "not available" in gpu_problem("cuda", False, requested, CPU, available)


# --- where the model comes from ---------------------------------------------------------------
def test_parse_model_uri():
    s = Settings(registered_model_name="ner", champion_alias="prod")
    assert parse_model_uri(None, s) == ModelSource("registry", "models:/ner@prod", name="ner", alias="prod")
    src = parse_model_uri("models:/other@champion", s)
    assert (src.kind, src.name, src.alias, src.polls) == ("registry", "other", "champion", True)
    pinned = parse_model_uri("models:/other/7", s)
    assert (pinned.version, pinned.alias, pinned.polls) == ("7", None, False)
    local = parse_model_uri("/srv/models/tiny", s)
    assert (local.kind, local.path, local.name, local.polls) == ("local", Path("/srv/models/tiny"), "tiny", False)
    for bad in ("models:/", "models:/name", "models:/@alias", "models:/a/b/latest"):
        with pytest.raises(ValueError):
            parse_model_uri(bad, s)


@pytest.mark.parametrize(
    ("current", "target", "failure", "now", "expect"),
    [
        (None, "1", None, 0.0, "load"),
        ("1", "1", None, 0.0, "keep"),
        ("1", "2", None, 0.0, "load"),
        ("2", "1", None, 0.0, "load"),  # a rollback is a change too
        ("1", None, None, 0.0, "missing"),
        (None, None, None, 0.0, "missing"),
        ("1", "2", Failure("2", 1, 10.0, "boom"), 5.0, "wait"),
        ("1", "2", Failure("2", 1, 10.0, "boom"), 10.0, "load"),
        ("1", "3", Failure("2", 4, 99.0, "boom"), 5.0, "load"),  # a new version is tried at once
    ],
)
def test_plan(current, target, failure, now, expect):
    assert plan(current, target, failure, now) == expect


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_seconds(n, 1.0, 8.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_gold_f1_prefers_the_registry_run_metric():
    rv = RegisteredVersion("sciner", "3", "run", tags={}, metrics={"gold_micro_f1": 0.61})
    assert gold_f1_of(rv, {"gold": {"micro_f1": 0.1}}) == 0.61
    rv_tag = RegisteredVersion("sciner", "3", "run", tags={"gold_micro_f1": "0.5"}, metrics={})
    assert gold_f1_of(rv_tag, {}) == 0.5
    assert gold_f1_of(None, {"gold": {"micro_f1": 0.3}}) == 0.3
    assert gold_f1_of(None, {"dev": {"micro_f1": 0.3}}) is None
    as_logged_by_rounds = RegisteredVersion("sciner", "4", "run", metrics={"eval_micro_f1": 0.42})
    assert gold_f1_of(as_logged_by_rounds, {}) == 0.42


def test_the_service_predictor_gets_its_own_budget_and_threads():
    s = Settings(batch_token_budget=4096, intra_op_threads=0, service_token_budget=256, service_intra_op_threads=1)
    p = predictor_settings(s)
    assert (p.batch_token_budget, p.intra_op_threads) == (256, 1)
    assert predictor_settings(s.model_copy(update={"service_intra_op_threads": None})).intra_op_threads == 0


# --- the swapper, with a fake registry and loader ---------------------------------------------
class FakeRegistry:
    def __init__(self) -> None:
        self.version: str | None = "1"
        self.down = False
        self.broken: set[str] = set()
        self.ungated: set[str] = set()  # versions the gate did not promote
        self.loads: list[str] = []

    def resolve(self, source, settings):
        if self.down:
            raise ConnectionError("registry unreachable")
        if self.version is None:
            return None
        tags = {} if self.version in self.ungated else {"decision": "promoted"}
        return RegisteredVersion("sciner", self.version, "run", tags=tags)

    def load(self, source, settings, registered):
        self.loads.append(registered.version)
        if registered.version in self.broken:
            raise RuntimeError(f"version {registered.version} is corrupt")
        return fake_model(registered.version)


class Hooks:
    def __init__(self) -> None:
        self.swaps: list[tuple[str | None, str]] = []
        self.failures: list[str] = []
        self.refused = 0

    def on_swap(self, old, new):
        self.swaps.append((old.version if old else None, new.version))

    def on_failed_load(self, stage):
        self.failures.append(stage)

    def on_refused(self):
        self.refused += 1


def make_swapper(reg: FakeRegistry, hooks: Hooks, clock: list[float]) -> tuple[Swapper, ModelHolder]:
    holder = ModelHolder()
    source = ModelSource("registry", "models:/sciner@champion", name="sciner", alias="champion")
    swapper = Swapper(source, SETTINGS, holder, hooks, resolver=reg.resolve, loader=reg.load, clock=lambda: clock[0])
    return swapper, holder


def test_swapper_loads_keeps_and_swaps_on_alias_change():
    reg, hooks, clock = FakeRegistry(), Hooks(), [0.0]
    swapper, holder = make_swapper(reg, hooks, clock)
    assert swapper.check_once() == "loaded" and holder.current.version == "1"
    assert swapper.check_once() == "kept" and reg.loads == ["1"]
    reg.version = "2"
    assert swapper.check_once() == "loaded" and holder.current.version == "2"
    assert hooks.swaps == [(None, "1"), ("1", "2")] and holder.swaps == 1
    assert not swapper.done  # an alias keeps being polled


def test_a_version_the_gate_did_not_promote_is_not_served():
    reg, hooks, clock = FakeRegistry(), Hooks(), [0.0]
    swapper, holder = make_swapper(reg, hooks, clock)
    swapper.check_once()
    reg.version, reg.ungated = "2", {"2"}
    assert swapper.check_once() == "refused" and swapper.check_once() == "refused"
    assert holder.current.version == "1" and reg.loads == ["1"] and holder.readiness() == (True, None)
    assert holder.refused.version == "2" and "v2 was not promoted" in holder.refused.reason
    assert hooks.refused == 1 and holder.refusals == 1  # counted once per version, not per poll
    reg.version = "1"  # the alias moved back
    assert swapper.check_once() == "kept" and holder.refused is None
    reg.version = "3"  # a promoted version swaps in with its record
    assert swapper.check_once() == "loaded" and holder.current.extra["promotion"].startswith("v3: promoted")


def test_an_ungated_champion_at_start_leaves_the_service_not_ready_with_the_reason():
    reg, hooks, clock = FakeRegistry(), Hooks(), [0.0]
    reg.ungated = {"1"}
    swapper, holder = make_swapper(reg, hooks, clock)
    assert swapper.check_once() == "refused" and holder.current is None
    ready, reason = holder.readiness()
    assert not ready and "not served: v1 was not promoted" in reason
    off = Swapper(
        swapper.source,
        SETTINGS.model_copy(update={"serve_only_gated": False}),
        ModelHolder(),
        hooks,
        resolver=reg.resolve,
        loader=reg.load,
        clock=lambda: clock[0],
    )
    assert off.check_once() == "loaded"  # development: the setting turns the check off


def test_a_failed_load_keeps_the_old_model_and_backs_off():
    reg, hooks, clock = FakeRegistry(), Hooks(), [0.0]
    swapper, holder = make_swapper(reg, hooks, clock)
    swapper.check_once()
    reg.version, reg.broken = "2", {"2"}
    assert swapper.check_once() == "failed"
    assert holder.current.version == "1" and holder.readiness() == (True, None)
    assert "corrupt" in holder.last_error and holder.failed_loads == 1 and hooks.failures == ["load"]
    assert swapper.check_once() == "waiting" and reg.loads == ["1", "2"]  # no retry within back-off
    clock[0] = 1.0
    assert swapper.check_once() == "failed" and swapper.failure.attempts == 2
    clock[0] = 2.5
    assert swapper.check_once() == "waiting"  # second back-off is 2 s
    reg.broken = set()
    clock[0] = 3.0
    assert swapper.check_once() == "loaded" and holder.current.version == "2" and holder.last_error is None


def test_registry_outage_and_missing_alias_keep_serving():
    reg, hooks, clock = FakeRegistry(), Hooks(), [0.0]
    swapper, holder = make_swapper(reg, hooks, clock)
    swapper.check_once()
    reg.down = True
    assert swapper.check_once() == "failed" and hooks.failures == ["resolve"]
    assert holder.current.version == "1"
    reg.down, reg.version = False, None
    assert swapper.check_once() == "missing" and holder.current.version == "1"


def test_no_model_at_all_is_not_ready_with_the_reason():
    reg, hooks, clock = FakeRegistry(), Hooks(), [0.0]
    reg.version = None
    swapper, holder = make_swapper(reg, hooks, clock)
    assert swapper.check_once() == "missing"
    ready, reason = holder.readiness()
    assert not ready and "does not exist" in reason


def test_local_folder_is_loaded_once(tmp_path):
    calls: list[str] = []

    def loader(source, settings, registered):
        calls.append(str(source.path))
        return fake_model("local-abc")

    holder = ModelHolder()
    swapper = Swapper(parse_model_uri(str(tmp_path), SETTINGS), SETTINGS, holder, loader=loader)
    assert not swapper.done
    assert swapper.check_once() == "loaded" and swapper.done
    assert swapper.check_once() == "kept" and calls == [str(tmp_path)]


def test_a_local_folder_that_is_not_a_model_fails_with_a_message(tmp_path):
    holder = ModelHolder()
    swapper = Swapper(parse_model_uri(str(tmp_path), SETTINGS), SETTINGS, holder)
    assert swapper.check_once() == "failed"
    assert "sciner.json missing" in holder.readiness()[1]


def test_load_model_from_a_real_folder_and_gpu_demand_on_a_cpu_host(tiny_model_dir):
    settings = Settings(intra_op_threads=1)
    source = parse_model_uri(str(tiny_model_dir), settings)
    model = load_model(source, settings)
    assert model.version.startswith("local-") and model.provider == CPU and model.gpu_problem is None
    assert model.labels[0] == "O" and model.predictor.predict_texts(["BERT on SQuAD ."])[0].windows == 1
    demanding = load_model(source, settings.model_copy(update={"require_gpu": True}))
    assert demanding.gpu_problem and "GPU demanded" in demanding.gpu_problem


def test_service_sessions_do_not_spin(tiny_model_dir):
    from sciner.predictor import Predictor

    served = predictor_settings(Settings(service_intra_op_threads=2, service_ort_spinning=False))
    assert served.ort_spinning is False
    pooled = Predictor.from_model_dir(tiny_model_dir, served)
    opts = pooled.backend.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_old_downloads_are_pruned_but_never_the_one_in_use(tmp_path):
    import os

    for i, v in enumerate([1, 2, 3, 4, 5]):
        d = tmp_path / f"sciner-v{v}" / "model"
        d.mkdir(parents=True)
        os.utime(tmp_path / f"sciner-v{v}", (1000 + i, 1000 + i))
    (tmp_path / "other-v1").mkdir()
    in_use = tmp_path / "sciner-v1" / "model"  # oldest, but serving
    removed = prune_downloads(tmp_path, "sciner", keep=2, protect=in_use)
    assert sorted(p.name for p in removed) == ["sciner-v2", "sciner-v3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-v1", "sciner-v1", "sciner-v4", "sciner-v5"]


def test_file_lock_excludes_other_holders(tmp_path):
    order: list[str] = []

    def second() -> None:
        with file_lock(tmp_path / "x.lock"):
            order.append("second")

    with file_lock(tmp_path / "x.lock"):
        t = threading.Thread(target=second)
        t.start()
        t.join(timeout=0.3)
        order.append("first")
    t.join(timeout=5)
    assert order == ["first", "second"]


def test_batch_wait_cap_holds_against_bentomls_learned_wait():
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    from service.dispatcher import cap_batch_wait

    d = CorkDispatcher(max_latency_in_ms=10_000, max_batch_size=32, fallback=lambda: None)
    assert cap_batch_wait(d, 0.002)
    for _ in range(60):  # a burst: every batch waited 300 ms in the queue
        d.optimizer.log_outbound(n=16, wait=0.3, duration=0.05)
    d.optimizer.trigger_refresh()
    assert d.optimizer.wait <= 0.002
    assert not cap_batch_wait(object(), 0.0)  # another BentoML: left alone, reported


def test_without_bentomls_app_factory_the_service_gets_no_dispatcher():
    from service.dispatcher import batch_factory

    assert batch_factory(object(), "infer") is None  # the service then runs unbatched, with a WARNING


# --- metrics ----------------------------------------------------------------------------------
def test_metrics_follow_swaps_and_failures():
    registry = CollectorRegistry()
    m = ServiceMetrics(registry)
    m.on_swap(None, fake_model("1"))
    m.on_swap(fake_model("1"), fake_model("2"))
    m.on_failed_load("load")
    m.on_refused()
    m.observe_request("extract", 3, 1)
    m.observe_entities(Counter({"TaskName": 2}))

    def value(metric, **labels):
        return registry.get_sample_value(metric, labels)

    assert value("sciner_model_info", name="sciner", version="2", alias="champion", provider=CPU) == 1
    assert value("sciner_model_info", name="sciner", version="1", alias="champion", provider=CPU) == 0
    assert value("sciner_model_swaps_total") == 1 and value("sciner_model_loads_total") == 2
    assert value("sciner_model_failed_loads_total", stage="load") == 1
    assert value("sciner_model_refused_total") == 1
    assert value("sciner_entities_total", label="TaskName") == 2
    assert value("sciner_windows_per_request_sum", endpoint="extract") == 3


# --- the request guard ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ctype", "ok"),
    [
        (None, False),  # a body must say it is JSON (browsers send simple cross-site POSTs without one)
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/vnd.bentoml+pickle", False),
    ],
)
def test_media_types(ctype, ok):
    assert media_type_ok(ctype) is ok


def run_guard(guard: RequestGuard, method: str, path: str, headers: dict[str, str], chunks: list[bytes]):
    sent: list[dict] = []
    inbox = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(guard(scope, receive, send))
    return sent


def echo_app():
    seen: dict = {}

    async def app(scope, receive, send):
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app, seen


def test_guard_rejects_wrong_content_type_and_oversized_bodies():
    from service.schemas import ExtractRequest

    app, seen = echo_app()
    models = {"/extract": ExtractRequest}
    guard = RequestGuard(app, body_models=models, max_body_bytes=16, not_ready_reason=lambda: None)
    js = {"content-type": "application/json"}
    out = run_guard(guard, "POST", "/extract", {"content-type": "text/plain"}, [b"{}"])
    assert out[0]["status"] == 415 and "application/json" in json.loads(out[1]["body"])["error"]
    out = run_guard(guard, "POST", "/extract", {}, [b"{}"])  # no Content-Type at all
    assert out[0]["status"] == 415
    out = run_guard(guard, "POST", "/extract", {**js, "content-length": "17"}, [b"x" * 17])
    assert out[0]["status"] == 413
    out = run_guard(guard, "POST", "/extract", js, [b"x" * 9, b"y" * 9])  # chunked, over the limit
    assert out[0]["status"] == 413 and "body" not in seen
    out = run_guard(guard, "POST", "/extract", js, [b'{"text"', b': "ab"}'])  # chunked, checked, replayed
    assert out[0]["status"] == 200 and seen["body"] == b'{"text": "ab"}'
    out = run_guard(guard, "POST", "/extract", js, [b'{"text": 1}'])
    assert out[0]["status"] == 422 and json.loads(out[1]["body"])["detail"][0]["field"] == "text"
    out = run_guard(guard, "GET", "/internal/infer", {}, [b""])
    assert out[0]["status"] == 404  # the batched method is in-process only


def test_guard_readyz_gives_the_reason():
    app, _ = echo_app()
    guard = RequestGuard(app, not_ready_reason=lambda: "no model loaded yet")
    out = run_guard(guard, "GET", "/readyz", {}, [b""])
    assert out[0]["status"] == 503 and b"no model loaded yet" in out[1]["body"]
    ready = RequestGuard(app, not_ready_reason=lambda: None)
    assert run_guard(ready, "GET", "/readyz", {}, [b""])[0]["status"] == 200
