"""A real `sla-processor worker` in a subprocess on isolated topics, and Kafka I/O for the tests."""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata
from prometheus_client.parser import text_string_to_metric_families

from processor.replay import read_events, replay
from processor.settings import Settings
from processor.sla.policy import load_policy
from processor.spawn import WorkerFailed, WorkerProcess, isolated_env, tail
from processor.topics import create_topics
from schemas.output_models import validate_output
from schemas.outputs import cloudevent

from .helpers import REPO_ROOT

SECONDS_POLICY = REPO_ROOT / "processor" / "sla" / "demo_policy.toml"
# The demo's clock with every optional rule on (warnings, acknowledgements, corrections, surveys).
EXTENDED_SECONDS_POLICY = REPO_ROOT / "examples" / "policies" / "extended-seconds.toml"
OUTPUT_KEYS = (
    "topic_escalations",
    "topic_updates_due",
    "topic_breaches",
    "topic_notices",
    "topic_warnings",
    "topic_acknowledgements",
    "topic_retractions",
    "topic_surveys",
)


@dataclass
class Worker:
    """One worker process; `settings` names its isolated topics."""

    bootstrap: str
    data_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # non-SLA variables for the process
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def __post_init__(self) -> None:
        env = isolated_env(f"t{self.run}.", f"sla-test-{self.run}", self.bootstrap,
                           self.data_dir, 4, SECONDS_POLICY)  # fmt: skip
        self.env = {**env, **self.overrides}
        self.settings = Settings(**{k.removeprefix("SLA_").lower(): v for k, v in self.env.items()})
        self.log = self.data_dir / "worker.log"
        self.child = WorkerProcess(self.env, self.log, cwd=REPO_ROOT, extra_env=self.extra_env)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.child.process

    @property
    def outputs(self) -> list[str]:
        return [getattr(self.settings, key) for key in OUTPUT_KEYS]

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['SLA_WEB_PORT']}"

    def create_topics(self) -> None:
        asyncio.run(create_topics(self.settings))

    def start(self, timeout: float = 90.0) -> None:
        """Spawn the worker and wait until it is ready (the log is appended to across restarts:
        readiness is judged on this spawn's part only)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.child.start()
        try:
            self.child.wait_ready(timeout)
        except WorkerFailed as exc:
            raise AssertionError(str(exc)) from None

    def tail(self, lines: int = 40) -> str:
        return tail(self.log, lines)

    def skipped_offsets(self) -> list[str]:
        """Offset ranges Faust counted as processed without a record, outside a transaction:
        records skipped (no topic here is written with transactions in at-least-once mode)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if '"WARNING"' in line and "without a record" in line]

    def excerpt(self, limit: int = 8000) -> str:
        """The log lines that tell how partitions moved and where reading resumed (for a failure)."""
        wanted = ("Ready", "rebuilt", "backlog", "Discarded", "Seek", "seek", "ERROR", "WARNING",
                  "partition read from", "Joined group", "_on_partitions_assigned", "Signal",
                  "without a record")  # fmt: skip
        lines = self.log.read_text(errors="replace").splitlines()
        kept = "\n".join(line[:300] for line in lines if any(w in line for w in wanted))
        return f"--- {self.log} ---\n{kept[-limit:]}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        code = self.child.stop(sig, timeout)
        assert code is not None, "never started"
        return code

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL, then wait until the broker has dropped the dead member from the group.

        A killed consumer cannot leave its group: its partitions stay with it until its session
        times out (SLA_SESSION_TIMEOUT_SECONDS); a worker started earlier would
        only wait for that inside its own join.
        """
        assert self.stop(signal.SIGKILL) == -signal.SIGKILL
        asyncio.run(wait_for_empty_group(self.bootstrap, self.settings.app_id, timeout))

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """The /metrics scrape as {(sample name, labels): value}."""
        status, body = self.get("/metrics")
        assert status == 200, body
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.web + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def event(
    event_id: str, kind: str, time_: str, subject: str, data: dict[str, Any] | None = None
) -> bytes:
    body: dict[str, Any] = {"specversion": "1.0", "id": event_id, "source": "tests", "type": kind,
                            "time": time_, "subject": subject}  # fmt: skip
    if data is not None:
        body["data"] = data
    return orjson.dumps(body)


async def produce(
    bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes]], linger_ms: int = 0
) -> None:
    """Send and flush; with `linger_ms` the records are held back until batched (each
    partition's share of a burst then lands in one batch)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms,
                                max_batch_size=2**20, max_request_size=2**24)  # fmt: skip
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(
    bootstrap: str,
    topics: list[str],
    *,
    seconds: float,
    expect: int | None = None,
    done: Callable[[list[Any]], bool] | None = None,
    settle: float = 0.0,
) -> list[Any]:
    """Every record on `topics` from the beginning, read for `seconds` at most, or until `expect`
    records arrived, or until `done(records)` holds and then `settle` seconds more."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (expect is None or len(records) < expect):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    checked(record)
                records.extend(batch)
            if done is not None and done(records):
                deadline = min(deadline, time.monotonic() + settle)
                done = None
    finally:
        await consumer.stop()
    return records


def checked(record: Any) -> None:
    """An output the processor wrote (source sla-processor) must be one its schema describes:
    every output a broker test reads is validated so."""
    if record.value and b'"source":"sla-processor"' in record.value:
        validate_output(record.value)


def comparable(value: bytes) -> dict[str, Any]:
    """An output CloudEvent without `emitted_at`, the one field that depends on the wall clock."""
    parsed: dict[str, Any] = orjson.loads(value)
    parsed["data"].pop("emitted_at")
    return parsed


async def wait_for_empty_group(bootstrap: str, group: str, timeout: float) -> None:
    """Until the consumer group has no members (a dead one is dropped at its session timeout)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        node = await admin.find_coordinator(group)
        deadline = time.monotonic() + timeout
        while True:
            [described] = await admin.describe_consumer_groups([group], group_coordinator_id=node)
            if not any(found["members"] for found in described.to_object()["groups"]):
                return
            assert time.monotonic() < deadline, f"group {group} still has members"
            await asyncio.sleep(0.25)
    finally:
        await admin.close()


async def produce_to(
    bootstrap: str,
    records: Iterable[tuple[str, int | None, bytes | None, bytes | None]],
) -> list[RecordMetadata]:
    """Send (topic, partition, key, value) in order, one at a time; returns where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2**20)
    await producer.start()
    try:
        return [
            await producer.send_and_wait(topic, value, key=key, partition=partition)
            for topic, partition, key, value in records
        ]
    finally:
        await producer.stop()


def replayed(
    lines: Iterable[bytes], until: datetime, policy_file: Path = SECONDS_POLICY
) -> list[dict[str, Any]]:
    """What `sla-processor replay --until` gives for these input events, without `emitted_at`."""
    policy = load_policy(policy_file)
    result = replay(read_events(lines, io.StringIO()), policy, until, io.StringIO())
    return [comparable(orjson.dumps(cloudevent(o, o.time))) for o in result.outputs]


def at(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).isoformat()
