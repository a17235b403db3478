"""A misconfigured `sla-processor` stops at start-up with exit code 2 and names what is wrong.

Each case runs the installed console script in a subprocess with a scrubbed environment and no
broker (127.0.0.1:1): a worker that got past its checks would end with exit code 4 (Kafka cannot
be reached), never 2.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from processor.settings import Settings

SCRIPT = Path(sys.executable).parent / "sla-processor"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_POLICY = REPO_ROOT / "processor" / "sla" / "demo_policy.toml"
NO_BROKER = {"SLA_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


def sla_processor(
    env: dict[str, str], cwd: Path, command: str = "worker"
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"console script missing: {SCRIPT} (pip install -e .)"
    scrubbed = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)}
    return subprocess.run(
        [str(SCRIPT), command],
        env={**scrubbed, **NO_BROKER, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def policy_with(tmp_path: Path, old: str, new: str) -> str:
    text = DEMO_POLICY.read_text()
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new))
    return str(path)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLA_TOPIC_PARTITIONS": "0"}, ["SLA_TOPIC_PARTITIONS", "greater than or equal to 1"]),
        ({"SLA_TOPIC_PARTITIONS": "many"}, ["SLA_TOPIC_PARTITIONS", "valid integer"]),
        ({"SLA_KAFKA_BOOTSTRAP_SERVERS": "localhost"}, ["SLA_KAFKA_BOOTSTRAP_SERVERS", "'localhost' is not host:port"]),
        ({"SLA_KAFKA_BOOTSTRAP_SERVERS": "a:1,b:x"}, ["SLA_KAFKA_BOOTSTRAP_SERVERS", "'b:x' is not host:port"]),
        ({"SLA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, ["SLA_KAFKA_SASL_MECHANISM", "SLA_KAFKA_SASL_USERNAME", "SLA_KAFKA_SASL_PASSWORD"]),
        ({"SLA_KAFKA_SECURITY_PROTOCOL": "TLS"}, ["SLA_KAFKA_SECURITY_PROTOCOL", "'SASL_SSL'"]),
        ({"SLA_PROCESSING_GUARANTEE": "maybe"}, ["SLA_PROCESSING_GUARANTEE", "'exactly_once'"]),
        ({"SLA_STORE": "redis://"}, ["SLA_STORE", "'rocksdb://'"]),
        ({"SLA_WEB_PORT": "70000"}, ["SLA_WEB_PORT", "less than or equal to 65535"]),
        ({"SLA_SESSION_TIMEOUT_SECONDS": "3"}, ["SLA_SESSION_TIMEOUT_SECONDS", "greater than or equal to 6"]),
        ({"SLA_PRODUCER_LINGER_SECONDS": "-0.1"}, ["SLA_PRODUCER_LINGER_SECONDS", "greater than or equal to 0"]),
        ({"SLA_COMMIT_INTERVAL_SECONDS": "0"}, ["SLA_COMMIT_INTERVAL_SECONDS", "greater than 0"]),
        ({"SLA_FOO": "1"}, ["unknown configuration variable", "SLA_FOO"]),
        ({"SLA_TOPIC_PARTITION": "8"}, ["unknown configuration variable", "SLA_TOPIC_PARTITION"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)  # fmt: skip
def test_bad_setting_stops_the_worker(
    tmp_path: Path, env: dict[str, str], expected: list[str]
) -> None:
    done = sla_processor(env, tmp_path)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.startswith("sla-processor: ")
    for text in expected:
        assert text in done.stderr
    assert "Traceback" not in done.stderr


def test_create_topics_checks_settings_too(tmp_path: Path) -> None:
    done = sla_processor({"SLA_TOPIC_PARTITIONS": "0"}, tmp_path, "create-topics")
    assert done.returncode == 2
    assert "SLA_TOPIC_PARTITIONS" in done.stderr


def test_a_secret_is_never_echoed(tmp_path: Path) -> None:
    env = {"SLA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLA_KAFKA_SASL_USERNAME": "svc",
           "SLA_KAFKA_SASL_PASSWORD": "hunter2-do-not-print"}  # fmt: skip
    done = sla_processor(env, tmp_path)
    assert done.returncode == 2
    assert "SLA_KAFKA_SASL_MECHANISM" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[response_targets]", "[response_targets", "cannot read the policy"),
        ('premium = "PT1.25S"', 'premium = "soon"', "response_targets.urgent.premium"),
        ('urgent = "PT10S"', 'urgent = "-PT10S"', "update_frequency"),
        ('pausing_statuses = ["pending_customer"]', 'pausing_statuses = "pending_customer"', "pausing_statuses"),
    ],
    ids=["toml-syntax", "bad-duration", "negative-frequency", "not-a-list"],
)  # fmt: skip
def test_malformed_policy_stops_the_worker(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = policy_with(tmp_path, old, new)
    done = sla_processor({"SLA_POLICY_FILE": path}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"sla-processor: invalid policy: {path}: ")
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_policy_file_stops_the_worker(tmp_path: Path) -> None:
    done = sla_processor({"SLA_POLICY_FILE": str(tmp_path / "nope.toml")}, tmp_path)
    assert done.returncode == 2
    assert "nope.toml" in done.stderr


def test_a_nested_data_dir_is_created(tmp_path: Path) -> None:
    """Faust makes only the last level of its data dir: the worker makes the rest first (before
    it finds no broker, and ends with exit code 4)."""
    data = tmp_path / "not" / "yet" / "there"
    done = sla_processor({"SLA_DATA_DIR": str(data), "SLA_STORE": "memory://"}, tmp_path)
    assert done.returncode == 4, done.stderr
    assert data.is_dir()


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    env = {"SLA_KAFKA_SECURITY_PROTOCOL": "SSL", "SLA_KAFKA_SSL_CAFILE": str(missing)}
    done = sla_processor(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"SLA_KAFKA_SSL_CAFILE: Value error, no such file: {missing}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_data_dir_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = sla_processor({"SLA_DATA_DIR": str(blocker / "data")}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"SLA_DATA_DIR {blocker / 'data'} is not a writable directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_web_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"SLA_WEB_HOST": "127.0.0.1", "SLA_WEB_PORT": str(port),
               "SLA_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
        done = sla_processor(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"SLA_WEB_PORT {port} on 127.0.0.1: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["worker", "create-topics"])
@pytest.mark.parametrize("servers", ["127.0.0.1:1", "no-such-host.invalid:9092"])
def test_an_unreachable_broker_ends_in_one_line_and_exit_code_4(
    tmp_path: Path, command: str, servers: str
) -> None:
    env = {"SLA_KAFKA_BOOTSTRAP_SERVERS": servers, "SLA_DATA_DIR": str(tmp_path / "data")}
    done = sla_processor(env, tmp_path, command)
    assert (done.returncode, done.stdout) == (4, ""), done.stderr
    named = f"sla-processor: Kafka at {servers} (SLA_KAFKA_BOOTSTRAP_SERVERS): "
    assert named + "KafkaConnectionError: Unable to bootstrap" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_names_the_build(tmp_path: Path) -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.startswith(f"sla-processor {version} (Python ")
    assert "faust-streaming " in done.stdout


@pytest.mark.parametrize("command", ["worker", "create-topics"])
def test_help_lists_every_setting_and_the_exit_codes(command: str) -> None:
    done = subprocess.run([str(SCRIPT), command, "--help"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0
    for name in Settings.model_fields:
        assert f"SLA_{name.upper()} " in done.stdout, name
    assert "3 a topic with another partition count" in done.stdout


@pytest.mark.parametrize("level", ["info", "Debug", "WARNING"])
def test_the_log_level_in_any_case(level: str) -> None:
    assert Settings(log_level=level).log_level == level.upper()  # type: ignore[arg-type]
