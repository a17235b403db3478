"""End-to-end smoke test against the real broker from conftest.py.

A Faust worker (tests/broker/smoke_app.py, run as a real ``faust worker`` subprocess) relays
one topic to another and counts records per key in a Table (compacted changelog topic).
Records go in with aiokafka AND kcat; the output is read back with aiokafka AND kcat and must
match exactly, in order; the changelog must hold the final count per key. Runs once with
``at_least_once`` and once with ``exactly_once`` (transactional producer, read_committed).
A second, faster test drives aiokafka's transactional producer and a consumer group directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from .helpers import REPO_ROOT

WORKER_START_TIMEOUT = 30.0  # worker start + relaying everything
READ_TIMEOUT = 20.0


def _kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (Debian: apt-get install -y kcat)", pytrace=False)
    return path


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


class Worker:
    """A `faust worker` subprocess for tests/broker/smoke_app.py."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faust",
                "-A",
                "tests.broker.smoke_app:app",
                "worker",
                "-l",
                "info",
            ],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self) -> str:
        self._log.flush()
        return f"--- worker log {self.log_path} (tail) ---\n{_tail(self.log_path)}"

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def kcat() -> str:
    return _kcat()


async def _create_topics(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(t, num_partitions=1, replication_factor=1) for t in topics]
        )
    finally:
        await admin.close()


async def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    config: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            for entry in resource[4]:
                config[entry[0]] = entry[1]
    return config


Records = list[tuple[bytes | None, bytes | None]]


async def _read(
    bootstrap: str, topic: str, until: Callable[[Records], bool], timeout: float
) -> Records:
    """Read partition 0 of an existing `topic` from the start (read_committed) until `until`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: Records = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(tp, timeout_ms=300)
            records.extend((m.key, m.value) for m in batch.get(tp, []))
    finally:
        await consumer.stop()
    return records


def _kcat_read(kcat: str, bootstrap: str, topic: str) -> list[tuple[str, str]]:
    result = subprocess.run(
        [
            kcat,
            "-C",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-X",
            "isolation.level=read_committed",
            "-f",
            "%k\t%s\n",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"kcat -C failed: {result.stderr}"
    pairs = [line.partition("\t") for line in result.stdout.splitlines()]
    return [(key, value) for key, _, value in pairs]


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    workers: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_faust_worker_relays_and_counts(
    kafka_bootstrap: str,
    kcat: str,
    run_id: str,
    tmp_path: Path,
    worker_factory: Callable[[dict[str, str]], Worker],
    guarantee: str,
) -> None:
    app_id = f"sla-smoke-{guarantee[:3]}-{run_id}"
    in_topic, out_topic = f"{app_id}-in", f"{app_id}-out"
    changelog = f"{app_id}-counts-changelog"
    await _create_topics(kafka_bootstrap, in_topic, out_topic)

    worker = worker_factory(
        {
            "SMOKE_BROKER": f"kafka://{kafka_bootstrap}",
            "SMOKE_APP_ID": app_id,
            "SMOKE_IN": in_topic,
            "SMOKE_OUT": out_topic,
            "SMOKE_DATA_DIR": str(tmp_path / "faust-data"),
            "SMOKE_GUARANTEE": guarantee,
        }
    )

    # input: 5 records with aiokafka, then 5 with kcat, all on partition 0
    from_aiokafka = [(f"k{i % 2}", f"{run_id}-aiokafka-{i}") for i in range(5)]
    from_kcat = [(f"k{i % 3}", f"{run_id}-kcat-{i}") for i in range(5)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in from_aiokafka:
            await producer.send_and_wait(in_topic, key=key.encode(), value=value.encode())
    finally:
        await producer.stop()
    produced = subprocess.run(
        [kcat, "-P", "-b", kafka_bootstrap, "-t", in_topic, "-p", "0", "-K", ":"],
        input="".join(f"{k}:{v}\n" for k, v in from_kcat),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert produced.returncode == 0, f"kcat -P failed: {produced.stderr}"
    expected = from_aiokafka + from_kcat

    # output via aiokafka: exact values, exact order
    got = await _read(
        kafka_bootstrap, out_topic, lambda r: len(r) >= len(expected), WORKER_START_TIMEOUT
    )
    decoded = [((k or b"").decode(), (v or b"").decode()) for k, v in got]
    assert decoded == expected, worker.log_tail()
    assert worker.proc.poll() is None, worker.log_tail()

    # output via kcat: the same
    assert _kcat_read(kcat, kafka_bootstrap, out_topic) == expected

    # table changelog: compacted topic whose latest value per key is the count
    expected_counts = Counter(k for k, _ in expected)

    def latest(records: Records) -> dict[str, int]:
        out: dict[str, int] = {}
        for k, v in records:
            out[json.loads(k or b"null")] = json.loads(v or b"null")
        return out

    changes = await _read(
        kafka_bootstrap, changelog, lambda r: latest(r) == expected_counts, READ_TIMEOUT
    )
    assert latest(changes) == dict(expected_counts), worker.log_tail()
    assert len(changes) == len(expected), worker.log_tail()  # one changelog write per event
    config = await _topic_config(kafka_bootstrap, changelog)
    assert config.get("cleanup.policy") == "compact", config

    # clean shutdown
    returncode = worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert returncode == 0, worker.log_tail()
    assert "Traceback" not in log, worker.log_tail()
    if guarantee == "exactly_once":
        assert "transactional producer" in log, worker.log_tail()


async def _aborted_transaction(producer: AIOKafkaProducer, topic: str) -> None:
    async with producer.transaction():
        await producer.send(topic, key=b"k", value=b"aborted")
        raise RuntimeError("abort me")


async def test_aiokafka_transactions_and_consumer_group(kafka_bootstrap: str, run_id: str) -> None:
    topic = f"sla-smoke-txn-{run_id}"
    await _create_topics(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"sla-smoke-txn-{run_id}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(3):
                await producer.send(topic, key=b"k", value=f"committed-{i}".encode())
        with pytest.raises(RuntimeError, match="abort me"):
            await _aborted_transaction(producer, topic)
        async with producer.transaction():
            await producer.send(topic, key=b"k", value=b"committed-3")
    finally:
        await producer.stop()

    group = f"sla-smoke-group-{run_id}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while len(values) < 4 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            values.extend(m.value for msgs in batch.values() for m in msgs if m.value is not None)
        assert values == [b"committed-0", b"committed-1", b"committed-2", b"committed-3"]
        await consumer.commit()
        tp = TopicPartition(topic, 0)
        assert consumer.assignment() == {tp}
        # offsets: 3 records + commit marker, aborted record + abort marker, record + marker
        assert await consumer.committed(tp) == await consumer.position(tp) >= 7
    finally:
        await consumer.stop()
