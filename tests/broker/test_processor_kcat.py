"""kcat (librdkafka, an independent client) produces the input and consumes the output.

Upstream keys its records wrongly, or not at all; librdkafka partitions by CRC32, not murmur2:
the worker re-keys, applies, and an urgent ticket gets step 1 at once and its breach 1.25 s later.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from processor.partitioning import partition_of

from .worker_harness import Worker, at, comparable, event, replayed

PARTITIONS = 4


def kcat() -> str:
    found = shutil.which("kcat")
    assert found, "kcat is missing (Debian package kcat)"
    return found


def run_kcat(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(
        [kcat(), *args], input=stdin, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def consume_with_kcat(bootstrap: str, topic: str, expect: int, seconds: float) -> list[bytes]:
    """`kcat -C -e -o beginning` until `expect` records are there (or time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        out = run_kcat(
            "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
            "-X", "isolation.level=read_committed", "-f", "%k\t%h\t%s\n",
        )  # fmt: skip
        lines = out.splitlines()
        if len(lines) >= expect or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_kcat_in_kcat_out(kafka_bootstrap: str, tmp_path: Path) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    urgent = event("ku-1", "ticket.opened", at(base, 0), "KC-URGENT",
                   {"customer_id": "c1", "support_tier": "basic", "severity": "urgent"})  # fmt: skip
    high = [
        event("kh-1", "ticket.opened", at(base, 0), "KC-HIGH",
              {"customer_id": "c2", "support_tier": "select", "severity": "high"}),
        event("kh-2", "ticket.responded", at(base, 0.5), "KC-HIGH", {"agent_id": "a"}),
    ]  # fmt: skip
    keyed = tmp_path / "keyed.jsonl"  # key|value per line (-K '|')
    keyed.write_bytes(b"tenant-7|" + urgent + b"\n")
    unkeyed = tmp_path / "unkeyed.jsonl"  # no key, all on one partition that is not the owner
    unkeyed.write_bytes(b"".join(line + b"\n" for line in high))
    wrong = (partition_of("KC-HIGH", PARTITIONS) + 1) % PARTITIONS
    tickets = worker.settings.topic_tickets
    try:
        run_kcat("-P", "-b", kafka_bootstrap, "-t", tickets, "-K", "|", "-l", str(keyed))
        run_kcat("-P", "-b", kafka_bootstrap, "-t", tickets, "-p", str(wrong), "-l", str(unkeyed))
        escalations = consume_with_kcat(kafka_bootstrap, worker.settings.topic_escalations, 2, 15)
        breaches = consume_with_kcat(kafka_bootstrap, worker.settings.topic_breaches, 1, 15)
        time.sleep(max((base + timedelta(seconds=4) - datetime.now(UTC)).total_seconds(), 0))
        everything = [
            line
            for topic in worker.outputs
            for line in consume_with_kcat(kafka_bootstrap, topic, 0, 0)
        ]
    finally:
        worker.stop()

    expected = replayed([urgent, *high], base + timedelta(seconds=4))
    assert [(e["type"], e["subject"]) for e in expected] == [
        ("sla.escalation", "KC-URGENT"), ("sla.escalation", "KC-HIGH"), ("sla.breach", "KC-URGENT"),
    ]  # fmt: skip
    records = [line.split(b"\t", 2) for line in everything]
    got = [comparable(value) for *_, value in records]
    assert sorted(got, key=_order) == sorted(expected, key=_order)
    assert len(escalations) == 2
    assert len(breaches) == 1
    for key, headers, value in records:
        parsed = orjson.loads(value)
        assert key == parsed["subject"].encode()
        assert headers == b"content-type=application/cloudevents+json"
    _, _, breach = records[[orjson.loads(v)["type"] for *_, v in records].index("sla.breach")]
    due = datetime.fromisoformat(orjson.loads(breach)["time"].replace("Z", "+00:00"))
    emitted = datetime.fromisoformat(
        orjson.loads(breach)["data"]["emitted_at"].replace("Z", "+00:00")
    )
    assert due == base + timedelta(seconds=1.25)
    assert timedelta(0) <= emitted - due < timedelta(seconds=1.5), "the timer fired early or late"


def _order(e: dict[str, object]) -> tuple[str, str, str]:
    return (str(e["time"]), str(e["subject"]), str(e["type"]))
