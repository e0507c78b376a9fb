"""Offline checks of the Kubernetes manifests under ``k8s/``.

Every deployable target (an overlay, optionally with components) is rendered with
``kubectl kustomize``. Each object is validated against the Kubernetes OpenAPI schemas that
ship with ``kubernetes-validate`` (strict: unknown fields fail). The policies the platform
relies on are then asserted one test at a time. No cluster or network is needed.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

if shutil.which("kubectl") is None:
    pytest.skip("kubectl is not on PATH: cannot render the kustomize overlays", allow_module_level=True)

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S = Path(__file__).resolve().parents[1] / "k8s"
EXAMPLE_SECRETS = K8S / "examples" / "secrets.example.yaml"
NAMESPACE = "sciner"

# Newest schema set shipped by kubernetes-validate 1.37, and the oldest Kubernetes minor
# the manifests are meant to run on.
SCHEMA_VERSIONS = ("1.30.0", "1.37.0")

# Short image names used in the manifests; kustomize `images:` must have replaced them all.
IMAGE_PLACEHOLDERS = {"sciner", "sciner-mlflow", "postgres"}
SCINER_UID = 1034
GPU = "nvidia.com/gpu"

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


@dataclass(frozen=True)
class Target:
    overlay: str
    components: tuple[str, ...] = ()

    @property
    def gpu(self) -> bool:
        return self.overlay == "gpu"

    @property
    def cronjob(self) -> bool:
        return "retrain-cronjob" in self.components

    @property
    def in_cluster_postgres(self) -> bool:
        return "external-database" not in self.components


TARGETS = {
    "cpu": Target("cpu"),
    "gpu": Target("gpu"),
    "cpu+retrain-cronjob": Target("cpu", ("retrain-cronjob",)),
    "gpu+retrain-cronjob": Target("gpu", ("retrain-cronjob",)),
    "cpu+external-database+mlflow-s3": Target("cpu", ("external-database", "mlflow-s3-artifacts")),
}
ALL = list(TARGETS)
GPU_TARGETS = [name for name, t in TARGETS.items() if t.gpu]
SCHEDULER_TARGETS = [name for name, t in TARGETS.items() if not t.cronjob]
CRONJOB_TARGETS = [name for name, t in TARGETS.items() if t.cronjob]


# --------------------------------------------------------------------------------------------
# rendering and helpers


def _kustomize(directory: Path) -> str:
    proc = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return proc.stdout


@functools.cache
def render_text(name: str) -> str:
    target = TARGETS[name]
    overlay = K8S / "overlays" / target.overlay
    if not target.components:
        return _kustomize(overlay)
    # Components are enabled the way an operator would: a kustomization that takes the
    # overlay as its resource. kustomize only accepts relative paths here.
    with tempfile.TemporaryDirectory(prefix="sciner-kustomize-") as tmp:
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(overlay, tmp)],
            "components": [os.path.relpath(K8S / "components" / c, tmp) for c in target.components],
        }
        Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return _kustomize(Path(tmp))


@functools.cache
def _render(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.safe_load_all(render_text(name)) if doc)


def render(name: str) -> list[dict[str, Any]]:
    return list(_render(name))


def kind_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def objects(name: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render(name) if o["kind"] == kind}


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template (metadata + spec) of a workload, or None for other kinds."""
    if obj["kind"] not in POD_TEMPLATE_KINDS:
        return None
    if obj["kind"] == "Pod":
        return obj
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def workloads(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in render(name):
        template = pod_template(obj)
        if template is not None:
            yield obj, template


def containers(name: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload/container id, pod spec, container) for every container and init container."""
    for obj, template in workloads(name):
        spec = template["spec"]
        for key in ("initContainers", "containers"):
            for container in spec.get(key, []):
                yield f"{kind_name(obj)}[{container['name']}]", spec, container


def container_of(obj: dict[str, Any], container_name: str) -> dict[str, Any]:
    template = pod_template(obj)
    assert template is not None, kind_name(obj)
    matches = [c for c in template["spec"]["containers"] if c["name"] == container_name]
    assert len(matches) == 1, f"{kind_name(obj)} has no container {container_name!r}"
    return matches[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (an empty selector matches everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


_SUFFIXES = {
    "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def quantity(value: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match, f"unparseable quantity {value!r}"
    number, suffix = match.groups()
    return float(number) * (_SUFFIXES[suffix] if suffix else 1)


# --------------------------------------------------------------------------------------------
# schema


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("target", ALL)
def test_objects_match_kubernetes_schema(target, version):
    from kubernetes_validate.utils import all_versions

    if version not in all_versions():
        pytest.fail(f"kubernetes-validate {kubernetes_validate.__version__} lacks schemas for {version}")
    errors = []
    for obj in render(target):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            errors.append(f"{kind_name(obj)} at {path or '<root>'}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{kind_name(obj)}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("target", ALL)
def test_renders_the_expected_objects(target):
    t = TARGETS[target]
    names = {kind_name(o) for o in render(target)}
    expected = {
        "Namespace/sciner",
        "Deployment/sciner-api",
        "Service/sciner-api",
        "HorizontalPodAutoscaler/sciner-api",
        "PodDisruptionBudget/sciner-api",
        "Deployment/mlflow",
        "Service/mlflow",
        "NetworkPolicy/default-deny-ingress",
        "NetworkPolicy/mlflow-ingress",
        "PersistentVolumeClaim/sciner-retrainer-home",
    }
    expected.add("CronJob/sciner-retrain" if t.cronjob else "Deployment/sciner-retrainer")
    if t.in_cluster_postgres:
        expected |= {"StatefulSet/postgres", "Service/postgres", "NetworkPolicy/postgres-ingress"}
    assert expected <= names, f"missing: {sorted(expected - names)}"
    if not t.in_cluster_postgres:
        assert not any(n.endswith("/postgres") for n in names), "external-database left postgres objects"


@pytest.mark.parametrize("target", ALL)
def test_all_objects_in_namespace_with_common_labels(target):
    for obj in render(target):
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "sciner", kind_name(obj)
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, kind_name(obj)


# --------------------------------------------------------------------------------------------
# secrets


def test_example_secrets_are_valid_placeholders():
    docs = [d for d in yaml.safe_load_all(EXAMPLE_SECRETS.read_text()) if d]
    assert {d["metadata"]["name"] for d in docs} >= {"postgres-credentials", "mlflow-backend-store", "sciner-store"}
    for doc in docs:
        kubernetes_validate.validate(doc, SCHEMA_VERSIONS[-1], strict=True)
        assert doc["metadata"]["namespace"] == NAMESPACE
        for key, value in doc["stringData"].items():
            assert "CHANGE-ME" in value, f"{kind_name(doc)}: {key} is not an obvious placeholder"
    # A template, never deployed: no kustomization may pull it in.
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        used = [*spec.get("resources", []), *spec.get("components", [])]
        assert not any("examples" in str(path) for path in used), f"{kustomization} deploys the example"


@pytest.mark.parametrize("target", ALL)
def test_no_credentials_in_rendered_manifests(target):
    assert not objects(target, "Secret"), "Secrets are created out of band, never rendered"
    example_names = {d["metadata"]["name"] for d in yaml.safe_load_all(EXAMPLE_SECRETS.read_text()) if d}
    for cid, _, container in containers(target):
        for env in container.get("env", []):
            assert not re.search(r"://[^/\s:@]+:[^@\s]+@", str(env.get("value", ""))), f"{cid}: {env['name']}"
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                assert ref["name"] in example_names, f"{cid}: undocumented Secret {ref['name']}"
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"]["name"] in example_names, cid


# --------------------------------------------------------------------------------------------
# containers


@pytest.mark.parametrize("target", ALL)
def test_every_container_has_liveness_and_readiness_probes(target):
    missing = [
        f"{cid}: {probe}"
        for cid, _, c in containers(target)
        for probe in ("livenessProbe", "readinessProbe")
        if probe not in c
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("target", ALL)
def test_every_container_sets_resource_requests_and_limits(target):
    for cid, _, c in containers(target):
        resources = c.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for res in ("cpu", "memory"):
            assert res in requests, f"{cid}: no {res} request"
            assert res in limits, f"{cid}: no {res} limit"
            assert quantity(requests[res]) <= quantity(limits[res]), f"{cid}: {res} request > limit"


@pytest.mark.parametrize("target", ALL)
def test_images_are_pinned(target):
    for cid, _, c in containers(target):
        image = c["image"]
        repository, _, digest = image.partition("@")
        last = repository.rsplit("/", 1)[-1]
        tag = last.partition(":")[2]
        assert tag or digest, f"{cid}: {image} has neither tag nor digest"
        assert tag != "latest", f"{cid}: {image} uses :latest"
        assert repository.split(":")[0] not in IMAGE_PLACEHOLDERS, f"{cid}: {image} escaped kustomize images:"
    assert ":latest" not in render_text(target)


@pytest.mark.parametrize("target", ALL)
def test_gpu_only_in_limits_and_only_in_gpu_overlay(target):
    gpu_containers = []
    for cid, _, c in containers(target):
        resources = c.get("resources", {})
        assert GPU not in resources.get("requests", {}), f"{cid}: {GPU} in requests"
        if GPU in resources.get("limits", {}):
            gpu_containers.append((cid, resources["limits"][GPU]))
    if TARGETS[target].gpu:
        assert gpu_containers == [("Deployment/sciner-api[api]", 1)]
    else:
        assert not gpu_containers
        assert GPU not in render_text(target), f"{GPU} mentioned outside the gpu overlay"


@pytest.mark.parametrize("target", GPU_TARGETS)
def test_gpu_overlay_runs_the_api_on_cuda(target):
    api = objects(target, "Deployment")["sciner-api"]
    spec = pod_template(api)["spec"]
    container = container_of(api, "api")
    env = env_of(container)
    assert env["SCINER_DEVICE"] == "cuda"
    assert env["SCINER_REQUIRE_GPU"] == "true"
    assert container["image"].endswith("-gpu")
    assert any(t["key"] == GPU for t in spec.get("tolerations", [])), "no toleration for GPU nodes"
    assert "nodeAffinity" in spec.get("affinity", {}) or "nodeSelector" in spec
    # The retrainer shares the ConfigMap but has no GPU: it must not be switched to CUDA.
    config = next(cm for n, cm in objects(target, "ConfigMap").items() if n.startswith("sciner-config"))
    assert config["data"]["SCINER_DEVICE"] == "cpu"


# --------------------------------------------------------------------------------------------
# retrainer


@pytest.mark.parametrize("target", ALL)
def test_cronjob_forbids_concurrent_runs(target):
    cronjobs = objects(target, "CronJob")
    for name, cronjob in cronjobs.items():
        assert cronjob["spec"].get("concurrencyPolicy") == "Forbid", name
    if TARGETS[target].cronjob:
        assert set(cronjobs) == {"sciner-retrain"}
        cronjob = cronjobs["sciner-retrain"]
        job = cronjob["spec"]["jobTemplate"]["spec"]
        assert job.get("parallelism", 1) == 1 and job.get("completions", 1) == 1
        container = container_of(cronjob, "retrainer")
        assert [*container.get("command", []), *container.get("args", [])][-3:] == ["sciner", "retrain", "--once"]
        # Never both the scheduler and the CronJob.
        assert "sciner-retrainer" not in objects(target, "Deployment")
    else:
        assert not cronjobs


@pytest.mark.parametrize("target", SCHEDULER_TARGETS)
def test_retrainer_deployment_is_a_single_recreated_replica(target):
    retrainer = objects(target, "Deployment")["sciner-retrainer"]
    assert retrainer["spec"]["replicas"] == 1
    assert retrainer["spec"]["strategy"] == {"type": "Recreate"}
    container = container_of(retrainer, "retrainer")
    assert [*container.get("command", []), *container.get("args", [])][-2:] == ["sciner", "scheduler"]
    assert container["livenessProbe"]["exec"]["command"] == ["sciner", "healthcheck"]
    assert not objects(target, "HorizontalPodAutoscaler").keys() - {"sciner-api"}


@pytest.mark.parametrize("target", ALL)
def test_retrainer_home_is_a_read_write_once_volume(target):
    retrainer = objects(target, "CronJob").get("sciner-retrain") or objects(target, "Deployment")["sciner-retrainer"]
    config = next(cm for n, cm in objects(target, "ConfigMap").items() if n.startswith("sciner-config"))
    home = config["data"]["SCINER_HOME"]
    mounts = {m["mountPath"]: m["name"] for m in container_of(retrainer, "retrainer")["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_template(retrainer)["spec"]["volumes"]}
    claim = volumes[mounts[home]]["persistentVolumeClaim"]["claimName"]
    assert objects(target, "PersistentVolumeClaim")[claim]["spec"]["accessModes"] == ["ReadWriteOnce"]
    # The API caches models in an emptyDir at the same path.
    api = objects(target, "Deployment")["sciner-api"]
    api_mounts = {m["mountPath"]: m["name"] for m in container_of(api, "api")["volumeMounts"]}
    api_volumes = {v["name"]: v for v in pod_template(api)["spec"]["volumes"]}
    assert "emptyDir" in api_volumes[api_mounts[home]]
    assert "emptyDir" in api_volumes[api_mounts["/tmp"]]


# --------------------------------------------------------------------------------------------
# pod security


@pytest.mark.parametrize("target", ALL)
def test_pods_run_as_non_root(target):
    for cid, spec, c in containers(target):
        pod_sc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{cid}: runAsNonRoot"
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        assert uid is not None and uid != 0, f"{cid}: runAsUser {uid}"
        if c["image"].split("@")[0].rsplit(":", 1)[0].endswith("/sciner"):
            assert uid == SCINER_UID, f"{cid}: the bento image user is uid {SCINER_UID}"


@pytest.mark.parametrize("target", ALL)
def test_containers_are_hardened(target):
    for cid, spec, c in containers(target):
        pod_sc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, f"{cid}: allowPrivilegeEscalation"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cid}: capabilities"
        assert sc.get("readOnlyRootFilesystem") is True, f"{cid}: readOnlyRootFilesystem"
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", f"{cid}: seccompProfile"
        assert spec.get("automountServiceAccountToken") is False, f"{cid}: service account token"
        # Service links inject MLFLOW_PORT / SCINER_* variables that clash with real settings.
        assert spec.get("enableServiceLinks") is False, f"{cid}: enableServiceLinks"
        assert not any(k in spec for k in ("hostNetwork", "hostPID", "hostIPC")), cid


# --------------------------------------------------------------------------------------------
# network


def _allowed_sources(target: str, pod_labels: dict[str, str], port: int) -> set[str]:
    """Workloads in the render that NetworkPolicies allow to reach pods with `pod_labels`."""
    policies = [
        p
        for p in objects(target, "NetworkPolicy").values()
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"]["podSelector"], pod_labels)
    ]
    assert policies, f"no ingress policy selects {pod_labels}"
    peers = []
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            name = policy["metadata"]["name"]
            assert rule.get("from"), f"{name}: rule without `from` admits everyone"
            assert [p.get("port") for p in rule.get("ports", [])] == [port], f"{name}: ports"
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, f"{name}: only same-namespace pod peers allowed"
                peers.append(peer["podSelector"])
    return {
        kind_name(obj)
        for obj, template in workloads(target)
        if any(selector_matches(peer, template["metadata"].get("labels", {})) for peer in peers)
    }


@pytest.mark.parametrize("target", ALL)
def test_network_policies_restrict_mlflow_and_postgres(target):
    policies = objects(target, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and not deny.get("ingress")

    retrainer = "CronJob/sciner-retrain" if TARGETS[target].cronjob else "Deployment/sciner-retrainer"
    mlflow = pod_template(objects(target, "Deployment")["mlflow"])["metadata"]["labels"]
    assert _allowed_sources(target, mlflow, 5000) == {"Deployment/sciner-api", retrainer}

    if TARGETS[target].in_cluster_postgres:
        postgres = pod_template(objects(target, "StatefulSet")["postgres"])["metadata"]["labels"]
        assert _allowed_sources(target, postgres, 5432) == {
            "Deployment/mlflow",
            "Deployment/sciner-api",
            retrainer,
        }


@pytest.mark.parametrize("target", ALL)
def test_network_policy_admits_api_traffic_on_3000(target):
    policy = objects(target, "NetworkPolicy")["sciner-api-ingress"]["spec"]
    api_labels = pod_template(objects(target, "Deployment")["sciner-api"])["metadata"]["labels"]
    assert selector_matches(policy["podSelector"], api_labels)
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [3000]


# --------------------------------------------------------------------------------------------
# service, MLflow, PostgreSQL


@pytest.mark.parametrize("target", ALL)
def test_api_probes_ports_and_service(target):
    api = objects(target, "Deployment")["sciner-api"]
    container = container_of(api, "api")
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 3000}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] in ("/livez", "/readyz")
    # Model download and warm-up take up to ~2 minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
    service = objects(target, "Service")["sciner-api"]["spec"]
    assert selector_matches({"matchLabels": service["selector"]}, pod_template(api)["metadata"]["labels"])
    assert service["ports"][0]["port"] == 3000


@pytest.mark.parametrize("target", ALL)
def test_api_autoscaling_and_disruption_budget(target):
    api = objects(target, "Deployment")["sciner-api"]
    assert "replicas" not in api["spec"], "the HPA owns the replica count"
    hpa = objects(target, "HorizontalPodAutoscaler")["sciner-api"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sciner-api"}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization"
    pdb = objects(target, "PodDisruptionBudget")["sciner-api"]["spec"]
    selected = {
        kind_name(obj)
        for obj, template in workloads(target)
        if selector_matches(pdb["selector"], template["metadata"]["labels"])
    }
    assert selected == {"Deployment/sciner-api"}


@pytest.mark.parametrize("target", ALL)
def test_mlflow_server_settings(target):
    mlflow = objects(target, "Deployment")["mlflow"]
    container = container_of(mlflow, "mlflow")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health", probe
    assert {p["containerPort"] for p in container["ports"]} == {5000}
    env = env_of(container)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_BACKEND_STORE_URI"]["secretKeyRef"]["name"] == "mlflow-backend-store"
    allowed_hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert {"mlflow:5000", f"mlflow.{NAMESPACE}.svc.cluster.local:5000"} <= set(allowed_hosts)
    uses_pvc = any("persistentVolumeClaim" in v for v in pod_template(mlflow)["spec"].get("volumes", []))
    if uses_pvc:  # a ReadWriteOnce artifact volume cannot be shared by two pods
        assert mlflow["spec"]["replicas"] == 1 and mlflow["spec"]["strategy"]["type"] == "Recreate"
    assert uses_pvc == ("mlflow-s3-artifacts" not in TARGETS[target].components)


@pytest.mark.parametrize("target", [n for n, t in TARGETS.items() if t.in_cluster_postgres])
def test_postgres_statefulset(target):
    postgres = objects(target, "StatefulSet")["postgres"]
    service = objects(target, "Service")["postgres"]
    assert service["spec"]["clusterIP"] == "None"
    assert postgres["spec"]["serviceName"] == "postgres"
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    container = container_of(postgres, "postgres")
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][0] == "pg_isready", probe
    assert env_of(container)["POSTGRES_PASSWORD"]["secretKeyRef"]["name"] == "postgres-credentials"


@pytest.mark.parametrize("target", ALL)
def test_references_resolve(target):
    """ConfigMaps, PVCs and ServiceAccounts used by pods are part of the render."""
    configmaps = set(objects(target, "ConfigMap"))
    claims = set(objects(target, "PersistentVolumeClaim"))
    accounts = set(objects(target, "ServiceAccount")) | {"default"}
    for obj, template in workloads(target):
        spec = template["spec"]
        assert spec.get("serviceAccountName", "default") in accounts, kind_name(obj)
        templates = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, kind_name(obj)
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, kind_name(obj)
        mounted = {v["name"] for v in spec.get("volumes", [])} | templates
        for c in spec["containers"]:
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in mounted, f"{kind_name(obj)}: volume {mount['name']}"
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, kind_name(obj)


# --------------------------------------------------------------------------------------------
# security (issue 12): API ingress, egress, tokens, MLflow accounts, shutdown grace

DNS_PORTS = {("UDP", 53), ("TCP", 53)}


@pytest.mark.parametrize("target", ALL)
def test_api_ingress_comes_only_from_the_ingress_controller_and_labelled_namespaces(target):
    policy = objects(target, "NetworkPolicy")["sciner-api-ingress"]["spec"]
    for rule in policy["ingress"]:
        assert rule.get("from"), "a rule without `from` admits every pod in the cluster"
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"} and peer["namespaceSelector"].get("matchLabels"), peer
    selected = [p["namespaceSelector"]["matchLabels"] for r in policy["ingress"] for p in r["from"]]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} in selected
    assert {"sciner.io/api-client": "true"} in selected


def _egress_rules(target: str, pod_labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        rule
        for p in objects(target, "NetworkPolicy").values()
        if "Egress" in p["spec"].get("policyTypes", []) and selector_matches(p["spec"]["podSelector"], pod_labels)
        for rule in p["spec"].get("egress", [])
    ]


def _egress_targets(target: str, pod_labels: dict[str, str]) -> tuple[set[str], set[tuple[str, int]], set[int]]:
    """(workloads reachable in the namespace, DNS ports allowed, ports open to IP blocks)."""
    reachable: set[str] = set()
    dns: set[tuple[str, int]] = set()
    external: set[int] = set()
    for rule in _egress_rules(target, pod_labels):
        assert rule.get("to") and rule.get("ports"), f"an egress rule without `to`/`ports` opens everything: {rule}"
        ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
        for peer in rule["to"]:
            if "ipBlock" in peer:
                external |= {port for _, port in ports}
            elif "namespaceSelector" in peer:
                assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
                assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
                dns |= ports
            else:
                reachable |= {
                    kind_name(obj)
                    for obj, template in workloads(target)
                    if selector_matches(peer["podSelector"], template["metadata"].get("labels", {}))
                }
    return reachable, dns, external


@pytest.mark.parametrize("target", ALL)
def test_egress_is_denied_by_default_and_opened_to_mlflow_postgres_and_dns(target):
    deny = objects(target, "NetworkPolicy")["default-deny-egress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Egress"] and not deny.get("egress")
    t = TARGETS[target]
    postgres = {"StatefulSet/postgres"} if t.in_cluster_postgres else set()
    retrainer = objects(target, "CronJob").get("sciner-retrain") or objects(target, "Deployment")["sciner-retrainer"]
    for workload in (objects(target, "Deployment")["sciner-api"], retrainer):
        reachable, dns, external = _egress_targets(target, pod_template(workload)["metadata"]["labels"])
        assert reachable == {"Deployment/mlflow", *postgres}, kind_name(workload)
        assert dns == DNS_PORTS
        assert external == (set() if t.in_cluster_postgres else {5432}), kind_name(workload)
    mlflow = objects(target, "Deployment")["mlflow"]
    reachable, dns, external = _egress_targets(target, pod_template(mlflow)["metadata"]["labels"])
    assert reachable == postgres and dns == DNS_PORTS
    s3 = {443} if "mlflow-s3-artifacts" in t.components else set()
    assert external == (set() if t.in_cluster_postgres else {5432}) | s3


@pytest.mark.parametrize("target", ALL)
def test_api_requires_bearer_tokens_from_a_secret_and_uses_the_read_only_mlflow_account(target):
    env = env_of(container_of(objects(target, "Deployment")["sciner-api"], "api"))
    assert env["SCINER_AUTH_ENABLED"] == "true"
    for key, scope in (("SCINER_API_READ_TOKENS", "read"), ("SCINER_API_WRITE_TOKENS", "write")):
        assert env[key]["secretKeyRef"] == {"name": "sciner-api-tokens", "key": scope}
    assert "*" not in env["SCINER_ALLOWED_HOSTS"].split(",")
    assert env["MLFLOW_TRACKING_USERNAME"] == "sciner-api"
    assert env["MLFLOW_TRACKING_PASSWORD"]["secretKeyRef"] == {"name": "mlflow-accounts", "key": "api-password"}
    # thread counts follow the CPU limit (cgroup quota); a fixed count here had no effect
    assert not {"SCINER_INTRA_OP_THREADS", "SCINER_SERVICE_INTRA_OP_THREADS"} & set(env)


@pytest.mark.parametrize("target", ALL)
def test_the_retrainer_uses_its_own_mlflow_account_and_mlflow_runs_with_authentication(target):
    retrainer = objects(target, "CronJob").get("sciner-retrain") or objects(target, "Deployment")["sciner-retrainer"]
    env = env_of(container_of(retrainer, "retrainer"))
    assert env["MLFLOW_TRACKING_USERNAME"] == "sciner-retrainer"
    assert env["MLFLOW_TRACKING_PASSWORD"]["secretKeyRef"] == {"name": "mlflow-accounts", "key": "retrainer-password"}
    mlflow = env_of(container_of(objects(target, "Deployment")["mlflow"], "mlflow"))
    assert mlflow["MLFLOW_AUTH"] == "true"
    assert mlflow["MLFLOW_AUTH_ADMIN_PASSWORD"]["secretKeyRef"] == {"name": "mlflow-auth", "key": "admin-password"}
    assert mlflow["MLFLOW_FLASK_SERVER_SECRET_KEY"]["secretKeyRef"]["name"] == "mlflow-auth"


@pytest.mark.parametrize("target", ALL)
def test_api_termination_grace_outlasts_the_longest_request(target):
    from sciner.settings import Settings

    api = objects(target, "Deployment")["sciner-api"]
    grace = pod_template(api)["spec"]["terminationGracePeriodSeconds"]
    pre_stop = container_of(api, "api")["lifecycle"]["preStop"]["exec"]["command"]
    pause = int(pre_stop[-1]) if pre_stop[0] == "sleep" else 0
    config = next(cm for n, cm in objects(target, "ConfigMap").items() if n.startswith("sciner-config"))
    timeout = int(config["data"].get("SCINER_REQUEST_TIMEOUT_SECONDS", Settings().request_timeout_seconds))
    assert grace >= pause + timeout, f"grace {grace}s < preStop {pause}s + request timeout {timeout}s"
