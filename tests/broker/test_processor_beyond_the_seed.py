"""Warnings, acknowledged escalations, corrections of late events, the timeline and the survey,
through a real broker and worker, against replay of the same events (the demo's clock, every
optional rule on: examples/policies/extended-seconds.toml)."""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from processor.replay import read_arrivals, read_events, replay, replay_arrivals
from processor.sla.policy import load_policy
from processor.sla.timeline import timeline
from schemas.outputs import cloudevent

from .worker_harness import (
    EXTENDED_SECONDS_POLICY,
    Worker,
    at,
    comparable,
    consume,
    event,
    produce,
)

POLICY = load_policy(EXTENDED_SECONDS_POLICY)
URGENT = {"customer_id": "c1", "support_tier": "premium", "severity": "urgent"}


def history(base: datetime) -> list[bytes]:
    """Every new rule once (seconds on the demo's clock: an hour of the seed is five)."""
    high = {"customer_id": "c2", "support_tier": "basic", "severity": "high"}
    low = {"customer_id": "c3", "support_tier": "select", "severity": "low"}
    return [
        # warnings before the response and the steps; step 1 acknowledged in time
        event("w1", "ticket.opened", at(base, 0), "T-W", URGENT),
        event("w2", "ticket.escalation_acknowledged", at(base, 0.5), "T-W",
              {"step": 1, "role": "tier2"}),
        event("w3", "ticket.responded", at(base, 0.9), "T-W", {"agent_id": "a1"}),
        event("w4", "ticket.escalation_acknowledged", at(base, 1.0), "T-W", {"step": 3}),  # DLQ
        event("w5", "ticket.resolved", at(base, 12), "T-W"),
        # step 1 never acknowledged: repeated three times, then given up
        event("u1", "ticket.opened", at(base, 0.2), "T-U", URGENT),
        event("u2", "ticket.responded", at(base, 0.5), "T-U"),
        # high: a missed acknowledgement takes the next step early
        event("h1", "ticket.opened", at(base, 0.3), "T-H", high),
        event("h2", "ticket.responded", at(base, 1), "T-H"),
        event("h3", "ticket.resolved", at(base, 14), "T-H"),
        # resolved: surveyed two minutes (a day) later
        event("s1", "ticket.opened", at(base, 0.4), "T-S", low),
        event("s2", "ticket.responded", at(base, 1), "T-S", {"agent_id": "a9"}),
        event("s3", "ticket.resolved", at(base, 2), "T-S"),
        # a malformed acknowledgement: a dead letter, nothing else changes
        event("x1", "ticket.escalation_acknowledged", at(base, 3), "T-U", {"step": "two"}),
    ]  # fmt: skip


def replayed(lines: list[bytes], until: datetime) -> list[dict[str, Any]]:
    done = replay(read_events(lines, io.StringIO()), POLICY, until, io.StringIO())
    return [comparable(orjson.dumps(cloudevent(o, o.time))) for o in done.outputs]


def key(e: dict[str, Any]) -> tuple[str, str, str, str]:
    return e["time"], e["subject"], e["type"], e["id"]


def within(outputs: list[dict[str, Any]], until: datetime) -> list[dict[str, Any]]:
    return [e for e in outputs if datetime.fromisoformat(e["time"]) <= until]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_burst_of_old_history_gives_what_replay_gives_and_the_same_timeline(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Events that happened minutes ago, read at once by a fresh worker: every warning,
    acknowledgement, repeat, early step and survey is replay's; the timeline is replay's."""
    worker = Worker(kafka_bootstrap, tmp_path / "worker",
                    overrides={"SLA_POLICY_FILE": str(EXTENDED_SECONDS_POLICY)})  # fmt: skip
    worker.create_topics()
    base = datetime.now(UTC) - timedelta(seconds=150)
    lines = history(base)
    until = base + timedelta(seconds=140)
    tickets = worker.settings.topic_tickets
    asyncio.run(produce(kafka_bootstrap, [(tickets, orjson.loads(v)["subject"].encode(), v)
                                          for v in lines]))  # fmt: skip
    expected = replayed(lines, until)
    worker.start()
    try:
        got = asyncio.run(consume(
            kafka_bootstrap, worker.outputs, seconds=60,
            done=lambda records: len(within([comparable(r.value) for r in records], until))
            >= len(expected), settle=2,
        ))  # fmt: skip
        dead = asyncio.run(consume(kafka_bootstrap, [tickets + ".dlq"], seconds=10, expect=2))
        live = get_json(f"{worker.web}/tickets/T-W/timeline")
    finally:
        worker.stop()

    kafka = within([comparable(r.value) for r in got], until)
    assert sorted(kafka, key=key) == sorted(expected, key=key)
    assert len({orjson.loads(r.value)["id"] for r in got}) == len(got)
    types = Counter(e["type"] for e in expected)
    assert set(types) >= {"sla.warning", "sla.escalation_acknowledged",
                          "sla.escalation_unacknowledged", "ticket.survey_due"}  # fmt: skip
    early = [e for e in expected if e["subject"] == "T-H" and e["type"] == "sla.escalation"]
    assert [e["data"]["step"] for e in early] == [1, 2, 3]
    reasons = sorted(dict(r.headers)["sla-error-reason"] for r in dead)
    assert reasons == [b"invalid_data", b"not_escalated"]

    # The worker's timeline equals replay's as of the same instant, but for when each output
    # was actually sent.
    as_of = datetime.fromisoformat(live["as_of"])
    done = replay(read_events(lines, io.StringIO()), POLICY, as_of, io.StringIO(), "T-W")
    offline = timeline("T-W", done.timeline, 0, done.tickets["T-W"], POLICY, as_of)
    offline = json.loads(orjson.dumps(offline))
    for answer in (live, offline):
        for output in answer["outputs"]:
            del output["emitted_at"], output["lateness"]
    assert live == offline
    assert [r["reason"] for r in live["rejected"]] == ["not_escalated"]


def test_a_late_response_through_kafka_retracts_the_breach_as_replay_in_arrival_order_does(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker",
                    overrides={"SLA_POLICY_FILE": str(EXTENDED_SECONDS_POLICY)})  # fmt: skip
    worker.create_topics()
    worker.start()
    tickets = worker.settings.topic_tickets
    try:
        base = datetime.now(UTC) + timedelta(seconds=1)
        opened = event("l1", "ticket.opened", at(base, 0), "T-L", URGENT)
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"T-L", opened)]))
        breach = asyncio.run(consume(
            kafka_bootstrap, [worker.settings.topic_breaches], seconds=15, expect=1))  # fmt: skip
        assert len(breach) == 1, worker.tail()
        # Responded at 1.0 s, before the breach (1.25 s): read after it, between deadlines
        # (1.25 s and 2.5 s), so that what had fired when it arrived is not in doubt.
        time.sleep(max((base + timedelta(seconds=1.8) - datetime.now(UTC)).total_seconds(), 0))
        late = event("l2", "ticket.responded", at(base, 1.0), "T-L")
        arrived = datetime.now(UTC)
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"T-L", late)]))
        until = base + timedelta(seconds=8)
        time.sleep(max((until - datetime.now(UTC)).total_seconds(), 0) + 2)
        got = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=5))
    finally:
        worker.stop()

    lines = [opened, orjson.dumps({"arrived_at": arrived.isoformat(),
                                   "event": orjson.loads(late)})]  # fmt: skip
    done = replay_arrivals(read_arrivals(lines, io.StringIO()), POLICY, until, io.StringIO())
    expected = [comparable(orjson.dumps(cloudevent(o, o.time))) for o in done.outputs]
    kafka = within([comparable(r.value) for r in got], until)
    assert sorted(kafka, key=key) == sorted(expected, key=key)
    retractions = [e for e in kafka if e["type"] == "sla.retraction"]
    assert [e["data"]["retracted_id"] for e in retractions] == [orjson.loads(breach[0].value)["id"]]
    assert retractions[0]["data"]["late_event"]["id"] == "l2"
