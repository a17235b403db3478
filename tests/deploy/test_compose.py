"""Static checks of the local stack: docker-compose.yml, deploy/Dockerfile, .dockerignore,
the Prometheus scrape config and the Grafana datasource.

No Docker engine is needed: everything is parsed and cross-checked against the repository
and against `processor.settings.Settings`, so a renamed setting, a moved file or a port
changed in one place only fails here instead of at `docker compose up`.
"""

from __future__ import annotations

import base64
import fnmatch
import glob
import os
import posixpath
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from processor.ingest.server import Ingest
from processor.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources"

INGEST_TOKENS = REPO / "deploy" / "compose" / "ingest-tokens"

PROCESSOR = "sla-processor"
INGEST = "sla-ingest"
TOPICS_JOB = "topics"
SLA_SERVICES = (TOPICS_JOB, PROCESSOR, INGEST)
EXPECTED_SERVICES = {"kafka", TOPICS_JOB, PROCESSOR, INGEST, "prometheus", "grafana"}
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- helpers


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs = compose.get("services")
    assert isinstance(svcs, dict), "docker-compose.yml has no services mapping"
    return svcs


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    data = _load_yaml(PROMETHEUS_CONFIG)
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, in either compose syntax, as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {kv[0]: kv[1] if len(kv) == 2 else "" for kv in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


@dataclass(frozen=True)
class Port:
    host_ip: str | None
    published: int | None
    target: int


def _ports(service: dict[str, Any]) -> list[Port]:
    ports = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            published = spec.get("published")
            ports.append(
                Port(
                    spec.get("host_ip"),
                    int(published) if published is not None else None,
                    int(spec["target"]),
                )
            )
            continue
        parts = str(spec).split("/", 1)[0].split(":")
        if len(parts) == 3:
            ports.append(Port(parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            ports.append(Port(None, int(parts[0]), int(parts[1])))
        else:
            ports.append(Port(None, None, int(parts[0])))
    return ports


@dataclass(frozen=True)
class Mount:
    kind: str  # "bind" or "volume"
    source: str
    target: str


def _mounts(service: dict[str, Any]) -> list[Mount]:
    mounts = []
    for spec in service.get("volumes") or []:
        if isinstance(spec, dict):
            mounts.append(Mount(spec["type"], str(spec.get("source", "")), spec["target"]))
            continue
        source, target = str(spec).split(":")[:2]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        mounts.append(Mount(kind, source, target))
    return mounts


def _read_only_binds(service: dict[str, Any]) -> bool:
    """Every volume of `service` is a read-only bind mount (short or long syntax)."""
    for spec in service.get("volumes") or []:
        if isinstance(spec, dict):
            if spec.get("type") != "bind" or not spec.get("read_only"):
                return False
        elif not str(spec).startswith((".", "/", "~")) or "ro" not in str(spec).split(":")[2:]:
            return False
    return True


def _host_path_for(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository path a bind mount exposes at `container_path`, if any."""
    wanted = PurePosixPath(posixpath.normpath(container_path))
    for mount in _mounts(service):
        if mount.kind != "bind":
            continue
        target = PurePosixPath(mount.target)
        if wanted == target or target in wanted.parents:
            return (REPO / mount.source / wanted.relative_to(target)).resolve()
    return None


def _image_tag(image: str) -> str | None:
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends with a line continuation"
    return instructions


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _dockerfile_env() -> dict[str, str]:
    """SLA_* variables the runtime image (the last stage) sets with ENV."""
    env: dict[str, str] = {}
    for keyword, args in _dockerfile_stages()[-1]:
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                if key.startswith("SLA_"):
                    env[key] = value
    return env


def _container_env(services: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    """The SLA_* environment a container of `name` runs with: image ENV, then compose."""
    compose_env = {k: v for k, v in _environment(services[name]).items() if k.startswith("SLA_")}
    return {**_dockerfile_env(), **compose_env}


def _settings_env(services: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    """`_container_env`, with each path a bind mount exposes in the container replaced by the
    repository file behind it: Settings checks that files such as SLA_INGEST_TOKEN_FILE exist,
    and here they exist in the repository, not at their path in the container."""
    env = _container_env(services, name)
    for key, value in env.items():
        if value.startswith("/"):
            host_path = _host_path_for(services[name], value)
            if host_path is not None:
                env[key] = str(host_path)
    return env


def _exposed_ports() -> set[int]:
    return {
        int(port.split("/")[0])
        for keyword, args in _dockerfile_stages()[-1]
        if keyword == "EXPOSE"
        for port in args.split()
    }


def _parse_listeners(value: str) -> dict[str, tuple[str, int]]:
    listeners = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        listeners[name] = (host, int(port))
    return listeners


def _bootstrap_servers(value: str) -> list[tuple[str, int]]:
    servers = []
    for server in value.removeprefix("kafka://").split(","):
        host, _, port = server.strip().rpartition(":")
        servers.append((host, int(port)))
    return servers


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def _scrape_targets(prometheus_config: dict[str, Any], job: str) -> list[str]:
    for scrape in prometheus_config.get("scrape_configs") or []:
        if scrape.get("job_name") == job:
            return [t for sc in scrape.get("static_configs", []) for t in sc.get("targets", [])]
    raise AssertionError(f"prometheus.yml has no scrape job {job!r}")


# --------------------------------------------------------------------------- compose


def test_compose_parses_with_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED_SERVICES


def test_environment_values_are_not_yaml_booleans(services: dict[str, dict[str, Any]]) -> None:
    # PyYAML (YAML 1.1) and compose (YAML 1.2) disagree on yes/no/on/off; quote them.
    for name, service in services.items():
        env = service.get("environment") or {}
        if isinstance(env, dict):
            bools = [k for k, v in env.items() if isinstance(v, bool)]
            assert not bools, f"{name}: quote boolean environment values {bools}"


def test_build_contexts_and_dockerfiles_exist(services: dict[str, dict[str, Any]]) -> None:
    builds = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert set(builds) >= {PROCESSOR, TOPICS_JOB, INGEST}
    for name, build in builds.items():
        if isinstance(build, str):
            build = {"context": build}
        context = (REPO / build.get("context", ".")).resolve()
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: dockerfile {dockerfile} does not exist"
        assert dockerfile.resolve() == DOCKERFILE
        assert context == REPO, f"{name}: the build context must be the repository root"


def test_bind_mounted_host_paths_exist(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for mount in _mounts(service):
            if mount.kind == "bind":
                source = (REPO / mount.source).resolve()
                assert source.exists(), f"{name}: bind mount source {mount.source} is missing"
                assert REPO in source.parents, f"{name}: {mount.source} is outside the repo"
            else:
                assert mount.source in declared_volumes, (
                    f"{name}: named volume {mount.source!r} is not declared under volumes:"
                )


def test_images_are_pinned_and_each_tag_is_written_once(
    services: dict[str, dict[str, Any]],
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image"
        tag = _image_tag(image)
        assert tag, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} uses latest"
        assert text.count(image) == 1, f"{image} is written more than once; use one anchor"
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["prometheus"]["image"].startswith("prom/prometheus:v")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_published_ports_are_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in _ports(service):
            assert port.published is not None, f"{name}: {port.target} gets a random host port"
            assert port.host_ip == LOOPBACK, (
                f"{name}: port {port.published} is published on {port.host_ip or 'all'} "
                f"interfaces, expected {LOOPBACK}"
            )


def test_only_the_processor_ingest_kafka_and_ui_publish_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    assert not _ports(services[TOPICS_JOB]), "the one-shot topics job serves nothing"
    published = {name for name, svc in services.items() if _ports(svc)}
    assert published == {"kafka", PROCESSOR, INGEST, "prometheus", "grafana"}


# --------------------------------------------------------------- processor settings


@pytest.mark.parametrize("name", SLA_SERVICES)
def test_sla_variables_are_settings_fields(services: dict[str, dict[str, Any]], name: str) -> None:
    known = {f"SLA_{field.upper()}" for field in Settings.model_fields}
    env = _container_env(services, name)
    assert env, f"{name}: no SLA_* environment"
    unknown = sorted(set(env) - known)
    assert not unknown, f"{name}: {unknown} are not fields of processor.settings.Settings"
    others = sorted(k for k in _environment(services[name]) if not k.startswith("SLA_"))
    assert not others, f"{name}: unexpected non-SLA_ variables {others}"


@pytest.mark.parametrize("name", SLA_SERVICES)
def test_settings_construct_from_the_container_environment(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("SLA_"):
            monkeypatch.delenv(key)
    env = _settings_env(services, name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    settings = Settings()

    assert settings.web_host == "0.0.0.0", "in a container the web server must bind 0.0.0.0"
    assert settings.web_port == int(env["SLA_WEB_PORT"])
    assert settings.kafka_bootstrap_servers == env["SLA_KAFKA_BOOTSTRAP_SERVERS"]
    assert str(settings.data_dir) == env["SLA_DATA_DIR"]
    assert settings.data_dir.is_absolute()
    if name == INGEST:
        # Off the loopback interface the ingest needs tokens: Settings() above checked that
        # SLA_INGEST_TOKEN_FILE is set and mounted; Ingest reads the tokens as it would start.
        assert settings.ingest_host == "0.0.0.0", "in a container the ingest must bind 0.0.0.0"
        assert settings.ingest_port == int(env["SLA_INGEST_PORT"])
        assert settings.ingest_token_file == INGEST_TOKENS
        assert Ingest(settings).credentials.tokens
    else:
        assert not any(k.startswith("SLA_INGEST_") for k in env), f"{name} runs no ingest"


def test_topics_job_worker_and_ingest_share_one_configuration(
    services: dict[str, dict[str, Any]],
) -> None:
    topics, worker, ingest = services[TOPICS_JOB], services[PROCESSOR], services[INGEST]
    assert _environment(topics) == _environment(worker)
    # The ingest adds its own settings and changes none of the others (topic names, Kafka).
    ingest_env = _environment(ingest)
    assert {k: v for k, v in ingest_env.items() if k in _environment(worker)} == _environment(
        worker
    )
    extra = sorted(set(ingest_env) - set(_environment(worker)))
    assert extra
    assert all(k.startswith("SLA_INGEST_") for k in extra), extra
    assert topics["image"] == worker["image"] == ingest["image"]
    assert topics.get("command") == ["create-topics"]
    assert worker.get("command") in (None, ["worker"])
    assert ingest.get("command") == ["ingest"]
    assert topics.get("restart", "no") == "no", "a one-shot job must not be restarted"
    assert worker.get("restart") == ingest.get("restart") == "unless-stopped"


def test_startup_order_waits_for_healthy_kafka_and_created_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["kafka"].get("healthcheck", {}).get("test"), "kafka needs a healthcheck"
    assert _depends_on(services[TOPICS_JOB]) == {"kafka": "service_healthy"}
    for name in (PROCESSOR, INGEST):
        assert _depends_on(services[name]) == {
            "kafka": "service_healthy",
            TOPICS_JOB: "service_completed_successfully",
        }, name
    # Prometheus must keep running when the processor is down, or SLAProcessorDown can't fire.
    assert PROCESSOR not in _depends_on(services["prometheus"])
    assert INGEST not in _depends_on(services["prometheus"])


def test_processor_port_matches_publish_expose_and_scrape(
    services: dict[str, dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    web_port = int(_container_env(services, PROCESSOR)["SLA_WEB_PORT"])

    targets = {port.target for port in _ports(services[PROCESSOR])}
    assert targets == {web_port}, "the processor must publish exactly SLA_WEB_PORT"
    assert web_port in _exposed_ports(), "deploy/Dockerfile must EXPOSE SLA_WEB_PORT"
    assert _scrape_targets(prometheus_config, PROCESSOR) == [f"{PROCESSOR}:{web_port}"]


def test_ingest_port_matches_publish_expose_and_scrape(
    services: dict[str, dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    env = _container_env(services, INGEST)
    ingest_port = int(env["SLA_INGEST_PORT"])
    assert ingest_port != int(env["SLA_WEB_PORT"])

    ports = _ports(services[INGEST])
    assert {port.target for port in ports} == {ingest_port}, (
        "the ingest must publish exactly SLA_INGEST_PORT (its SLA_WEB_PORT serves nothing)"
    )
    assert [port.published for port in ports] == [ingest_port]
    assert ingest_port in _exposed_ports(), "deploy/Dockerfile must EXPOSE SLA_INGEST_PORT"
    assert _scrape_targets(prometheus_config, INGEST) == [f"{INGEST}:{ingest_port}"]


@pytest.mark.parametrize(
    ("name", "port_variable"), [(PROCESSOR, "SLA_WEB_PORT"), (INGEST, "SLA_INGEST_PORT")]
)
def test_healthcheck_probes_readyz_on_the_served_port(
    services: dict[str, dict[str, Any]], name: str, port_variable: str
) -> None:
    test = services[name]["healthcheck"]["test"]
    assert isinstance(test, list)
    assert test[0] == "CMD", "exec form: the image has no curl"
    command = " ".join(test[1:])
    assert "/readyz" in command
    assert f"os.environ['{port_variable}']" in command
    assert port_variable in _container_env(services, name)


def test_ingest_is_stateless_and_its_tokens_are_a_read_only_local_placeholder(
    services: dict[str, dict[str, Any]],
) -> None:
    ingest = services[INGEST]
    assert _read_only_binds(ingest), "the ingest holds no state: read-only bind mounts only"
    token_file = _container_env(services, INGEST)["SLA_INGEST_TOKEN_FILE"]
    assert _host_path_for(ingest, token_file) == INGEST_TOKENS
    lines = INGEST_TOKENS.read_text(encoding="utf-8").splitlines()
    comments = " ".join(line for line in lines if line.startswith("#")).lower()
    assert "local" in comments, "say the token is for the local stack only"
    assert "replace" in comments, "say the token must be replaced anywhere else"
    tokens = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert tokens
    assert all(len(token) >= 32 for token in tokens)


def test_processor_data_dir_is_a_named_volume(services: dict[str, dict[str, Any]]) -> None:
    data_dir = _container_env(services, PROCESSOR)["SLA_DATA_DIR"]
    volumes = {m.target: m for m in _mounts(services[PROCESSOR])}
    assert data_dir in volumes, f"SLA_DATA_DIR {data_dir} is not mounted"
    assert volumes[data_dir].kind == "volume", "state belongs in a named volume"
    declared = [
        path
        for keyword, args in _dockerfile_stages()[-1]
        if keyword == "VOLUME"
        for path in (yaml.safe_load(args) if args.startswith("[") else args.split())
    ]
    assert data_dir in declared, "deploy/Dockerfile must declare VOLUME SLA_DATA_DIR"


# ---------------------------------------------------------------------------- kafka


@pytest.fixture(scope="module")
def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return _environment(services["kafka"])


def test_kafka_is_a_single_kraft_node(kafka_env: dict[str, str]) -> None:
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = kafka_env["KAFKA_NODE_ID"]
    voters = kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1
    assert voters[0].startswith(f"{node_id}@kafka:")
    assert kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert kafka_env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    # kafka-storage.sh format needs a base64url-encoded 16-byte UUID.
    cluster_id = kafka_env["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_kafka_controller_listener_is_internal_only(
    services: dict[str, dict[str, Any]], kafka_env: dict[str, str]
) -> None:
    listeners = _parse_listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = _parse_listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    controller_names = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    voter_port = int(kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].rpartition(":")[2])
    published = {port.target for port in _ports(services["kafka"])}
    for name in controller_names:
        assert name in listeners
        assert name not in advertised, "the controller listener must not be advertised"
        assert listeners[name][1] == voter_port
        assert listeners[name][1] not in published, "the controller port must not be published"
    assert kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"] not in controller_names


@pytest.mark.parametrize("name", SLA_SERVICES)
def test_processor_bootstrap_matches_an_advertised_kafka_listener(
    services: dict[str, dict[str, Any]], kafka_env: dict[str, str], name: str
) -> None:
    listeners = _parse_listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = _parse_listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    env = _container_env(services, name)
    kafka_hosts = {"kafka", services["kafka"].get("hostname", "kafka")}
    expected_protocol = env.get(
        "SLA_KAFKA_SECURITY_PROTOCOL", Settings.model_fields["kafka_security_protocol"].default
    )

    for host, port in _bootstrap_servers(env["SLA_KAFKA_BOOTSTRAP_SERVERS"]):
        assert host in kafka_hosts, f"{host} is not the kafka service on the compose network"
        matches = [lname for lname, address in advertised.items() if address == (host, port)]
        assert matches, f"{host}:{port} is not an advertised listener {advertised}"
        (listener,) = matches
        assert listeners[listener][1] == port, f"listener {listener} does not listen on {port}"
        assert protocols[listener] == expected_protocol


def test_kafka_host_listener_is_published_and_is_the_settings_default(
    services: dict[str, dict[str, Any]], kafka_env: dict[str, str]
) -> None:
    listeners = _parse_listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = _parse_listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    published = {(p.host_ip, p.published): p.target for p in _ports(services["kafka"])}
    host_listeners = [name for name, (host, _) in advertised.items() if host == LOOPBACK]
    assert len(host_listeners) == 1, f"expected one listener advertised on {LOOPBACK}"
    (name,) = host_listeners
    host, port = advertised[name]
    assert published.get((host, port)) == listeners[name][1], (
        f"advertised {host}:{port} is not published to listener {name}'s port"
    )
    # Running the processor on the host with no SLA_* variables reaches this listener.
    default = Settings.model_fields["kafka_bootstrap_servers"].default
    assert _bootstrap_servers(default) == [(host, port)]


def test_kafka_healthcheck_probes_the_listener_the_processor_uses(
    services: dict[str, dict[str, Any]],
) -> None:
    test = services["kafka"]["healthcheck"]["test"]
    command = " ".join(test) if isinstance(test, list) else test
    bootstrap = _container_env(services, PROCESSOR)["SLA_KAFKA_BOOTSTRAP_SERVERS"]
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in command
    assert f"--bootstrap-server {bootstrap}" in command


# ----------------------------------------------------------------- prometheus/grafana


def _prometheus_config_path(service: dict[str, Any]) -> str:
    flags = [a for a in service.get("command") or [] if a.startswith("--config.file=")]
    return flags[0].split("=", 1)[1] if flags else "/etc/prometheus/prometheus.yml"


def test_prometheus_config_is_mounted_where_prometheus_reads_it(
    services: dict[str, dict[str, Any]],
) -> None:
    config_path = _prometheus_config_path(services["prometheus"])
    assert _host_path_for(services["prometheus"], config_path) == PROMETHEUS_CONFIG


def test_prometheus_rule_files_exist_at_their_mounted_location(
    services: dict[str, dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    prometheus = services["prometheus"]
    config_dir = posixpath.dirname(_prometheus_config_path(prometheus))
    rule_files = prometheus_config.get("rule_files") or []
    assert rule_files, "prometheus.yml loads no rule files"
    found: set[Path] = set()
    for pattern in rule_files:
        # Relative paths resolve against the config file's directory (in the container).
        container_pattern = posixpath.join(config_dir, pattern)
        host_dir = _host_path_for(prometheus, posixpath.dirname(container_pattern))
        assert host_dir is not None, f"{container_pattern} is not bind-mounted into prometheus"
        matches = glob.glob(str(host_dir / posixpath.basename(container_pattern)))
        assert matches, f"rule_files entry {pattern!r} matches no file in {host_dir}"
        found.update(Path(m) for m in matches)
    rules_dir = REPO / "deploy" / "prometheus" / "rules"
    assert rules_dir / "sla.rules.yml" in found
    assert rules_dir / "sla.rules.test.yml" not in found, "unit tests are not rule files"


def test_grafana_datasource_points_at_prometheus(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    host_dir = _host_path_for(grafana, "/etc/grafana/provisioning/datasources")
    assert host_dir == GRAFANA_DATASOURCES
    provisioning = _load_yaml(GRAFANA_DATASOURCES / "prometheus.yml")
    assert provisioning["apiVersion"] == 1
    (datasource,) = provisioning["datasources"]
    assert datasource["type"] == "prometheus"
    prometheus_port = {p.target for p in _ports(services["prometheus"])}
    assert len(prometheus_port) == 1
    assert datasource["url"] == f"http://prometheus:{prometheus_port.pop()}"


def test_grafana_anonymous_access_is_read_only(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["grafana"])
    if env.get("GF_AUTH_ANONYMOUS_ENABLED", "false").lower() == "true":
        assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer"


# ------------------------------------------------------------------------ Dockerfile


def test_dockerfile_runtime_image_shape() -> None:
    instructions = _dockerfile_instructions()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    stages = _dockerfile_stages()
    stage_names: set[str] = set()
    for stage in stages:
        base, *rest = stage[0][1].split()
        for name, value in args.items():
            base = base.replace(f"${{{name}}}", value).replace(f"${name}", value)
        if base not in stage_names:
            assert base.startswith("python:3.11-slim"), f"unexpected base image {base}"
        if len(rest) == 2 and rest[0].upper() == "AS":
            stage_names.add(rest[1])

    runtime = dict(stages[-1])
    assert shlex.split(runtime["USER"])[0].split(":")[0] not in ("root", "0"), "run as non-root"
    assert yaml.safe_load(runtime["ENTRYPOINT"]) == ["sla-processor"]
    assert yaml.safe_load(runtime["CMD"]) == ["worker"]
    assert "6066" in runtime["EXPOSE"].split()


def _dockerignored(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(c, p.strip("/")) for c in candidates for p in patterns)


def test_build_copies_everything_pip_install_needs() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "keep .dockerignore deny-only"

    copied: set[str] = set()
    for keyword, args in _dockerfile_stages()[0]:
        if keyword == "COPY" and "--from" not in args:
            *sources, _dest = shlex.split(args)
            copied.update(s.rstrip("/") for s in sources)
    for source in copied:
        # A wildcard source may match nothing (an optional file); a plain one must exist.
        if not any(char in source for char in "*?["):
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"
        for match in glob.glob(source, root_dir=REPO) or [source]:
            assert not _dockerignored(match, patterns), f".dockerignore excludes {match}"

    project = pyproject["project"]
    needed = {"pyproject.toml"}
    if isinstance(project.get("readme"), str):
        needed.add(project["readme"])
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    for include in find.get("include", []):
        needed.update(
            p.name for p in REPO.glob(include) if p.is_dir() and (p / "__init__.py").exists()
        )
    missing = sorted(n for n in needed if not any(fnmatch.fnmatch(n, c) for c in copied))
    assert not missing, f"the build stage does not copy {missing}"


def test_dockerignore_excludes_local_state() -> None:
    patterns = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {".git", ".venv", "var", "deploy/kafka/lib", ".pytest_cache", ".mypy_cache"}
    assert required <= patterns, f".dockerignore misses {sorted(required - patterns)}"
    assert any("__pycache__" in p for p in patterns)
