"""deploy/kubernetes/: every manifest valid against the Kubernetes schemas (offline, strict: no
unknown field), and consistent with the processor: settings it accepts, probes it serves, a
stable advertised host, labels that select the pods. The same for the HTTP ingest's Deployment:
settings the ingest starts with (its tokens from a Secret), its probes, port and Service."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from processor.ingest.server import Ingest
from processor.settings import Settings, unknown_variables

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
# The oldest release still supported by its makers when this was written, and the newest known.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
INGEST = "sla-ingest"
WORKLOADS = ("StatefulSet", "Deployment")


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return loaded


def _resources() -> dict[str, dict[str, Any]]:
    """Kind -> the resource (one of each kind, except Service: by name)."""
    found: dict[str, dict[str, Any]] = {}
    for name in _kustomization()["resources"]:
        resource = yaml.safe_load((KUBERNETES / name).read_text())
        key = resource["kind"] if resource["kind"] != "Service" else resource["metadata"]["name"]
        found[key] = resource
    return found


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(_kustomization()["resources"]))
def test_manifest_is_valid(name: str, version: str) -> None:
    resource = yaml.safe_load((KUBERNETES / name).read_text())
    kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), "three"),
        (("spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "port"), []),
        (("spec", "template", "spec", "containers", 0, "resource"), {"requests": {}}),
    ],
    ids=["wrong-type", "wrong-port", "unknown-field"],
)
@pytest.mark.parametrize("kind", WORKLOADS)
def test_the_validator_refuses_a_broken_workload(
    kind: str, path: tuple[Any, ...], value: Any
) -> None:
    broken = copy.deepcopy(_resources()[kind])
    node = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def _pod(kind: str = "StatefulSet") -> dict[str, Any]:
    pod: dict[str, Any] = _resources()[kind]["spec"]["template"]["spec"]
    return pod


def _container(kind: str = "StatefulSet") -> dict[str, Any]:
    (container,) = _pod(kind)["containers"]
    assert isinstance(container, dict)
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_settings_are_ones_the_processor_accepts() -> None:
    config = _resources()["ConfigMap"]["data"]
    env = {e["name"]: e.get("value", "x") for e in _container()["env"]}
    variables = {**config, **env}
    assert unknown_variables({k: v for k, v in variables.items() if k.startswith("SLA_")}) == []
    pod = {"POD_NAME": "sla-processor-0", "POD_NAMESPACE": "prod"}
    resolved = {
        k: v.replace("$(POD_NAME)", pod["POD_NAME"]).replace(
            "$(POD_NAMESPACE)", pod["POD_NAMESPACE"]
        )
        for k, v in variables.items()
        if k.startswith("SLA_") and k != "SLA_KAFKA_SASL_PASSWORD"
    }
    settings = Settings(**{k.removeprefix("SLA_").lower(): v for k, v in resolved.items()})
    assert settings.web_host == "0.0.0.0"
    headless = _resources()["sla-processor-headless"]["metadata"]["name"]
    assert settings.web_advertised_host == f"sla-processor-0.{headless}.prod.svc"
    assert settings.group_instance_id == "sla-processor-0"
    assert settings.static_member_id == f"sla-processor-0-sla-processor-0.{headless}.prod.svc-6066"
    mounts = {m["mountPath"] for m in _container()["volumeMounts"]}
    assert str(settings.data_dir) in mounts


def test_the_ingest_settings_are_ones_it_starts_with(tmp_path: Path) -> None:
    """The ConfigMap and the Deployment's env make settings the ingest accepts, bound to 0.0.0.0
    with a token file that the Secret's volume provides (a file of the test's here)."""
    container = _container("Deployment")
    config = _resources()["ConfigMap"]["data"]
    env = {name: e["value"] for name, e in _env(container).items() if "value" in e}
    variables = {**config, **env}
    assert unknown_variables({k: v for k, v in variables.items() if k.startswith("SLA_")}) == []
    assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == ["sla-processor"]

    # The token file is the Secret's key `tokens`, mounted read-only.
    token_path = Path(variables["SLA_INGEST_TOKEN_FILE"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(token_path.parent)]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in _pod("Deployment")["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == "sla-ingest-tokens"
    assert secret.get("optional") is not True, "the ingest cannot start without its tokens"
    assert {item["path"]: item["key"] for item in secret["items"]} == {token_path.name: "tokens"}
    assert secret["defaultMode"] & 0o040, "uid 10001 reads it through fsGroup"

    token_file = tmp_path / token_path.name
    token_file.write_text("# test\n" + "t" * 32 + "\n")
    resolved = {k: v for k, v in variables.items() if k.startswith("SLA_")}
    resolved["SLA_INGEST_TOKEN_FILE"] = str(token_file)
    settings = Settings(**{k.removeprefix("SLA_").lower(): v for k, v in resolved.items()})
    assert settings.ingest_host == "0.0.0.0"
    assert Ingest(settings).credentials.tokens == (b"t" * 32,)
    # The ingest reaches Kafka as the workers do.
    worker, ingest = _env(_container()), _env(container)
    assert ingest["SLA_KAFKA_SASL_PASSWORD"] == worker["SLA_KAFKA_SASL_PASSWORD"]


def test_probes_ports_and_selectors_agree() -> None:
    resources = _resources()
    statefulset = resources["StatefulSet"]
    container = _container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = int(resources["ConfigMap"]["data"]["SLA_WEB_PORT"])
    assert container["ports"] == [{"name": "web", "containerPort": port}]
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"] == labels
    assert statefulset["spec"]["serviceName"] == "sla-processor-headless"
    for name in ("sla-processor", "sla-processor-headless"):
        assert resources[name]["spec"]["selector"].items() <= labels.items()
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert {m["name"] for m in container["volumeMounts"]} <= claims | {"tmp"}
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_ingest_probes_ports_and_selectors_agree() -> None:
    resources = _resources()
    deployment = resources["Deployment"]
    container = _container("Deployment")
    assert deployment["metadata"]["name"] == INGEST
    assert container["args"] == ["ingest"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = {name: e["value"] for name, e in _env(container).items() if "value" in e}
    port = int(env["SLA_INGEST_PORT"])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    service = resources[INGEST]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    # Workers and ingest are told apart: no selector of one picks the other's pods.
    worker_labels = resources["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= worker_labels.items()
    for selector in (
        resources["sla-processor"]["spec"]["selector"],
        resources["sla-processor-headless"]["spec"]["selector"],
        resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert not selector.items() <= labels.items()

    # Stateless: no volume but the tokens and /tmp (the root filesystem is read-only).
    pod = _pod("Deployment")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} == set(volumes)
    assert all("secret" in v or "emptyDir" in v for v in volumes.values())


@pytest.mark.parametrize("kind", WORKLOADS)
def test_workloads_run_unprivileged(kind: str) -> None:
    pod, container = _pod(kind), _container(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "memory" in container["resources"]["limits"]
    assert "cpu" not in container["resources"]["limits"], "throttling delays timers and requests"


def test_images_are_the_projects_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    job = _resources()["Job"]["spec"]["template"]["spec"]["containers"][0]
    images = {_container()["image"], _container("Deployment")["image"], job["image"]}
    assert images == {f"sla-processor:{version}"}
