"""examples/notifier against a live worker: every escalation action and breach becomes one
message, once, across a restart of the notifier and a second consumer group reading the topics
from their beginning again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from .helpers import REPO_ROOT
from .worker_harness import Worker, at, consume, event, produce

NOTIFIER = REPO_ROOT / "examples" / "notifier" / "notifier.py"


class Notifier:
    def __init__(self, worker: Worker, store: Path, out: Path, group: str) -> None:
        settings = worker.settings
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NOTIFIER_BOOTSTRAP": worker.bootstrap,
            "NOTIFIER_GROUP": group,
            "NOTIFIER_TOPICS": f"{settings.topic_escalations},{settings.topic_breaches}",
            "NOTIFIER_STORE": str(store),
        }
        self.out = out
        self.process: subprocess.Popen[bytes] | None = None
        self._file: IO[bytes] | None = None

    def start(self) -> None:
        self._file = self.out.open("ab")
        self.process = subprocess.Popen([sys.executable, str(NOTIFIER)], env=self.env,
                                        stdout=self._file, stderr=subprocess.PIPE)  # fmt: skip
        assert self.process.stderr is not None
        assert self.process.stderr.readline() == b"notifier: started\n"

    def stop(self) -> None:
        assert self.process is not None
        assert self._file is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0
        assert self.process.stderr is not None
        self.process.stderr.close()
        self._file.close()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines()]


def _urgent(base: datetime, subject: str) -> tuple[str, bytes, bytes]:
    data = {"customer_id": "c", "support_tier": "premium", "severity": "urgent"}
    return (
        subject,
        subject.encode(),
        event(f"{subject}-1", "ticket.opened", at(base, 0), subject, data),
    )


def _wait_for(notifier: Notifier, ids: set[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not ids <= {m["id"] for m in notifier.lines()}:
        time.sleep(0.2)


def test_each_output_handled_once_across_restarts(kafka_bootstrap: str, tmp_path: Path) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    settings = worker.settings
    outputs_topics = [settings.topic_escalations, settings.topic_breaches]
    notifier = Notifier(worker, tmp_path / "seen.sqlite3", tmp_path / "messages.jsonl", "n1")
    try:
        notifier.start()
        base = datetime.now(UTC)
        first = [_urgent(base, f"N-{n}") for n in range(4)]
        asyncio.run(produce(kafka_bootstrap, [(settings.topic_tickets, k, v) for _, k, v in first]))
        # step 1 at once, the breach at 1.25 s (demo policy); step 2 at 10 s
        early = asyncio.run(consume(kafka_bootstrap, outputs_topics, seconds=30, expect=8))
        _wait_for(notifier, {orjson.loads(r.value)["id"] for r in early}, 30)
        notifier.stop()  # restarted while later steps fall due
        notifier.start()
        base = datetime.now(UTC)
        second = [_urgent(base, f"M-{n}") for n in range(3)]
        asyncio.run(
            produce(kafka_bootstrap, [(settings.topic_tickets, k, v) for _, k, v in second])
        )
        time.sleep(14)  # the first tickets' step 2 and the second ones' step 1 and breach
        everything = asyncio.run(consume(kafka_bootstrap, outputs_topics, seconds=5))
        _wait_for(notifier, {orjson.loads(r.value)["id"] for r in everything}, 30)
        notifier.stop()
    finally:
        worker.stop()
    # Another group reads both topics from their start, with the same store: it handles only
    # what fell due after the first one stopped, and none of what the first one handled.
    final = asyncio.run(consume(kafka_bootstrap, outputs_topics, seconds=5))
    first_ids = {m["id"] for m in notifier.lines()}
    later = {orjson.loads(r.value)["id"] for r in final} - first_ids
    again = Notifier(worker, tmp_path / "seen.sqlite3", tmp_path / "again.jsonl", "n2")
    again.start()
    _wait_for(again, later, 30)
    time.sleep(3)
    again.stop()
    events = [orjson.loads(r.value) for r in final]
    assert {e["type"] for e in events} == {"sla.escalation", "sla.breach"}
    assert len({e["subject"] for e in events}) == 7
    assert {orjson.loads(r.value)["id"] for r in everything} <= first_ids
    expected: Counter[str] = Counter()
    for e in events:
        expected[e["id"]] += len(e["data"]["actions"]) if e["type"] == "sla.escalation" else 1
    # Every output handled once between the two: each action of it one message, no repeat.
    assert Counter(m["id"] for m in notifier.lines() + again.lines()) == expected
    assert {m["id"] for m in again.lines()} == later
    steps = Counter(e["data"]["step"] for e in events if e["type"] == "sla.escalation")
    assert steps[2] >= 4  # the first tickets' second step came after the restart
