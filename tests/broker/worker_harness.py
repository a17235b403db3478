"""A real `sla-processor worker` in a subprocess on isolated topics, and Kafka I/O for the tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processor.service import create_topics
from processor.settings import Settings

from .helpers import REPO_ROOT

SECONDS_POLICY = REPO_ROOT / "processor" / "sla" / "demo_policy.toml"
OUTPUT_KEYS = ("topic_escalations", "topic_updates_due", "topic_breaches", "topic_notices")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Worker:
    """One worker process; `settings` names its isolated topics."""

    bootstrap: str
    data_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def __post_init__(self) -> None:
        prefix = f"t{self.run}."
        self.env = {
            "SLA_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SLA_APP_ID": f"sla-test-{self.run}",
            "SLA_TOPIC_TICKETS": prefix + "tickets.events",
            "SLA_TOPIC_MAINTENANCE": prefix + "maintenance.events",
            "SLA_TOPIC_ESCALATIONS": prefix + "sla.escalations",
            "SLA_TOPIC_UPDATES_DUE": prefix + "sla.updates-due",
            "SLA_TOPIC_BREACHES": prefix + "sla.breaches",
            "SLA_TOPIC_NOTICES": prefix + "maintenance.notices",
            "SLA_TOPIC_PARTITIONS": "4",
            "SLA_POLICY_FILE": str(SECONDS_POLICY),
            "SLA_STORE": "memory://",
            "SLA_DATA_DIR": str(self.data_dir),
            "SLA_WEB_PORT": str(free_port()),
            "SLA_LOG_LEVEL": "INFO",
            **self.overrides,
        }
        self.settings = Settings(**{k.removeprefix("SLA_").lower(): v for k, v in self.env.items()})
        self.log = self.data_dir / "worker.log"

    @property
    def outputs(self) -> list[str]:
        return [getattr(self.settings, key) for key in OUTPUT_KEYS]

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['SLA_WEB_PORT']}"

    def create_topics(self) -> None:
        asyncio.run(create_topics(self.settings))

    def start(self, timeout: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "processor", "worker"],
                env={**env, **self.env},
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        marker = b"deadline indexes rebuilt"
        start_size = 0
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.tail()}")
            if marker in self.log.read_bytes()[start_size:] and b"Worker]: Ready" in self.log.read_bytes():
                return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

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


async def produce(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topics: list[str], *, seconds: float, expect: int | None = None
) -> list[Any]:
    """Every record on `topics` from the beginning, read for `seconds` (or until `expect` arrived)."""
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
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def comparable(value: bytes) -> dict[str, Any]:
    """An output CloudEvent without `emitted_at`, the one field that depends on the wall clock."""
    parsed: dict[str, Any] = orjson.loads(value)
    parsed["data"].pop("emitted_at")
    return parsed
