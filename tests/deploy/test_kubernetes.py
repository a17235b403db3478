"""deploy/kubernetes/: every manifest valid against the Kubernetes schemas (offline, strict: no
unknown field), and consistent with the processor: settings it accepts, probes it serves, a
stable advertised host, labels that select the pods."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from processor.settings import Settings, unknown_variables

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
# The oldest release still supported by its makers when this was written, and the newest known.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


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
def test_the_validator_refuses_a_broken_statefulset(path: tuple[Any, ...], value: Any) -> None:
    broken = copy.deepcopy(_resources()["StatefulSet"])
    node = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def _container() -> dict[str, Any]:
    container: dict[str, Any] = _resources()["StatefulSet"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


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


def test_images_are_the_projects_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    job = _resources()["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert {_container()["image"], job["image"]} == {f"sla-processor:{version}"}
