"""Real Kafka broker for the tests in tests/broker/ (all of them get the ``broker`` marker).

``kafka_bootstrap`` (session) yields "127.0.0.1:PORT":
- SLA_TEST_KAFKA_BOOTSTRAP set: that broker is used as is; it must answer, or the tests fail.
- otherwise a single-node broker is started with ``deploy/kafka/kafka.sh start`` on a free port
  (data in var/kafka-test-<port>, removed after a clean stop unless SLA_TEST_KAFKA_KEEP=1),
  version SLA_TEST_KAFKA_VERSION or the script's default, and stopped at session end.
A broker that cannot be started or does not answer FAILS the tests: never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import (
    REPO_ROOT,
    free_port_pair,
    kafka_ready,
    kafka_sh,
)

HERE = Path(__file__).resolve().parent
START_ATTEMPTS = 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.broker)


@pytest.fixture(scope="session")
def kafka_version() -> str | None:
    """Kafka version to start (None = kafka.sh default); ignored with SLA_TEST_KAFKA_BOOTSTRAP."""
    return os.environ.get("SLA_TEST_KAFKA_VERSION") or None


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_version: str | None) -> Iterator[str]:
    external = os.environ.get("SLA_TEST_KAFKA_BOOTSTRAP")
    if external:
        ok, detail = kafka_ready.wait_ready(external, timeout=20.0)
        if not ok:
            pytest.fail(
                f"SLA_TEST_KAFKA_BOOTSTRAP={external} does not answer as a Kafka broker: {detail}",
                pytrace=False,
            )
        yield external
        return

    version_args = ["--version", kafka_version] if kafka_version else []
    failures: list[str] = []
    started = False
    for _ in range(START_ATTEMPTS):
        port = free_port_pair()
        data_dir = REPO_ROOT / "var" / f"kafka-test-{port}"
        args = ["--port", str(port), "--dir", str(data_dir), *version_args]
        # generous timeout: the first run may have to fetch the jars with Maven
        result = kafka_sh("start", *args, timeout=900)
        if result.returncode == 0:
            started = True
            break
        failures.append(
            f"kafka.sh start {' '.join(args)} -> exit {result.returncode}\n"
            f"{result.stdout}\n{result.stderr}"
        )
        # only a port taken between our probe and the broker's bind is worth another try
        if "already in use" not in result.stderr:
            break
    if not started:
        pytest.fail("could not start the test broker:\n" + "\n".join(failures), pytrace=False)

    bootstrap = f"127.0.0.1:{port}"
    try:
        yield bootstrap
    finally:
        stop = kafka_sh("stop", *args, timeout=120)
        if stop.returncode != 0:
            pytest.fail(f"kafka.sh stop failed:\n{stop.stdout}\n{stop.stderr}", pytrace=False)
        if not os.environ.get("SLA_TEST_KAFKA_KEEP"):
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def own_broker(kafka_version: str | None) -> Iterator[tuple[str, list[str]]]:
    """A broker of the test's own, to stop and start again (an outage): its bootstrap address
    and the kafka.sh arguments that name it."""
    port = free_port_pair()
    data_dir = REPO_ROOT / "var" / f"kafka-own-{port}"
    args = ["--port", str(port), "--dir", str(data_dir)]
    args += ["--version", kafka_version] if kafka_version else []
    started = kafka_sh("start", *args, timeout=900)
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"127.0.0.1:{port}", args
    kafka_sh("stop", *args, timeout=120)
    shutil.rmtree(data_dir, ignore_errors=True)
