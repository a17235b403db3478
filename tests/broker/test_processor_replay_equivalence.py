"""Through a real broker and worker, the engine's scenario gives exactly what `replay` gives."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from processor.replay import read_events, replay
from processor.sla.policy_set import load_policies
from schemas.outputs import cloudevent

from .worker_harness import SECONDS_POLICY, Worker, comparable, consume, event, produce

HORIZON = 32.0  # seconds of scenario after `base`; one hour of the seed is five seconds here


def scenario(base: datetime) -> list[tuple[str, bytes]]:
    """(domain, event) in time order per subject: every rule of the contract shows up once."""

    def at(seconds: float) -> str:
        return (base + timedelta(seconds=seconds)).isoformat()

    t, m = "tickets", "maintenance"
    return [
        (t, event("a1", "ticket.opened", at(0), "T-A", {"customer_id": "c1", "support_tier": "premium", "severity": "urgent"})),
        (t, event("a2", "ticket.responded", at(3), "T-A", {"agent_id": "x"})),
        (t, event("a3", "ticket.updated", at(15), "T-A", {})),
        (t, event("a3", "ticket.updated", at(15), "T-A", {})),  # a repeated id: ignored
        (t, event("a4", "ticket.resolved", at(24), "T-A")),
        (t, event("b1", "ticket.opened", at(0.5), "T-B", {"customer_id": "c2", "support_tier": "select", "severity": "high"})),
        (t, event("b2", "ticket.responded", at(2), "T-B")),
        (t, event("b3", "ticket.severity_changed", at(6), "T-B", {"severity": "urgent"})),
        (t, event("b4", "ticket.status_changed", at(8), "T-B", {"status": "pending_customer"})),
        (t, event("b5", "ticket.status_changed", at(11), "T-B", {"status": "open"})),
        (t, event("b6", "ticket.closed", at(26), "T-B")),
        (t, event("c1", "ticket.opened", at(1), "T-C", {"customer_id": "c3", "support_tier": "basic", "impact": "minor"})),
        (t, event("c2", "ticket.responded", at(5), "T-C")),
        (t, event("d1", "ticket.opened", at(1), "T-D", {"customer_id": "c4", "support_tier": "basic", "severity": "high"})),
        (t, event("d2", "ticket.resolved", at(3), "T-D")),
        (t, event("d3", "ticket.reopened", at(9), "T-D")),
        (t, event("d4", "ticket.resolved", at(20), "T-D")),
        (t, event("e1", "ticket.updated", at(2), "T-NEVER-OPENED")),  # rejected: dead letter
        (m, event("m1", "maintenance.scheduled", at(0), "M-1", {"kind": "planned", "summary": "router", "window_start": at(150), "window_end": at(160)})),
        (m, event("n1", "maintenance.scheduled", at(1), "M-2", {"kind": "planned", "summary": "db", "window_start": at(700), "window_end": at(710)})),
        (m, event("n2", "maintenance.rescheduled", at(4), "M-2", {"window_start": at(300), "window_end": at(310)})),
        (m, event("n3", "maintenance.cancelled", at(12), "M-2")),
    ]  # fmt: skip


def upstream_key(value: bytes) -> bytes:
    """Half the subjects keyed right, half keyed by something stable but wrong (re-keyed)."""
    subject: str = orjson.loads(value)["subject"]
    return subject.encode() if subject in ("T-A", "T-C", "M-1") else b"tenant-" + subject.encode()


def replayed(
    lines: list[bytes], until: datetime, policy: Path = SECONDS_POLICY
) -> list[dict[str, object]]:
    result = replay(read_events(lines, io.StringIO()), load_policies(policy), until, io.StringIO())
    return [comparable(orjson.dumps(cloudevent(o, o.time))) for o in result.outputs]


def a_policy_set(path: Path, renewal: datetime) -> Path:
    """The demo's clock renewed at `renewal` (high targets of a second or so, step 2 of high at
    five seconds), and customer c3 on a policy with a four-second update cadence for normal."""
    path.write_text(
        f"""
[[policies.demo.versions]]
label = "1"
effective_from = 2020-01-01T00:00:00Z
file = "{SECONDS_POLICY}"
[[policies.demo.versions]]
label = "2"
effective_from = {renewal.isoformat().replace("+00:00", "Z")}
file = "{SECONDS_POLICY}"
[policies.demo.versions.overrides.response_targets]
high = {{ premium = "PT1S", select = "PT1S", basic = "PT1.5S" }}
[[policies.demo.versions.overrides.escalation.high]]
step = 1
after = "PT0S"
actions = [{{ role = "tier1", action = "route" }}]
[[policies.demo.versions.overrides.escalation.high]]
step = 2
after = "PT5S"
actions = [{{ role = "tier2", action = "route" }}]
[[policies.cadence.versions]]
label = "1"
effective_from = 2020-01-01T00:00:00Z
file = "{SECONDS_POLICY}"
[policies.cadence.versions.overrides.update_frequency]
normal = "PT4S"
[[select]]
policy = "cadence"
customer_id = ["c3"]
""".replace("[[policies.demo", 'default = "demo"\n[[policies.demo', 1)
    )
    return path


@pytest.mark.parametrize("policy", ["plain", "set"])
def test_outputs_through_kafka_equal_replay(
    kafka_bootstrap: str, tmp_path: Path, policy: str
) -> None:
    """Plain: the demo's policy. Set: versions and a rule (T-B opens under the first version,
    T-D under the renewal, T-C under its customer's policy), chosen by event time: the events
    may reach the worker after their time (it starts after `base` was set) and still give
    replay's outputs."""
    policy_file = SECONDS_POLICY
    base = datetime.now(UTC) + timedelta(seconds=4)
    if policy == "set":
        base = datetime.now(UTC) + timedelta(seconds=10)
        policy_file = a_policy_set(tmp_path / "set.toml", base + timedelta(seconds=0.75))
    worker = Worker(kafka_bootstrap, tmp_path / "worker", {"SLA_POLICY_FILE": str(policy_file)})
    worker.create_topics()
    worker.start()
    try:
        if policy == "plain":
            base = datetime.now(UTC) + timedelta(seconds=4)
        rows = scenario(base)
        topics = {
            "tickets": worker.settings.topic_tickets,
            "maintenance": worker.settings.topic_maintenance,
        }
        records = [(topics[domain], upstream_key(value), value) for domain, value in rows]
        asyncio.run(produce(kafka_bootstrap, records))
        until = base + timedelta(seconds=HORIZON)
        time.sleep(max((until - datetime.now(UTC)).total_seconds(), 0) + 3)
        got = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=5))
        dead = asyncio.run(
            consume(kafka_bootstrap, [worker.settings.topic_tickets + ".dlq"], seconds=3, expect=1)
        )
    finally:
        worker.stop()

    expected = replayed([value for _, value in rows], until, policy_file)
    ids = Counter(orjson.loads(r.value)["id"] for r in got)
    assert not [i for i, n in ids.items() if n > 1], "an output id was emitted twice"
    kafka = [comparable(r.value) for r in got]
    in_horizon = [
        e for e in kafka if datetime.fromisoformat(e["time"].replace("Z", "+00:00")) <= until
    ]
    key = lambda e: (e["time"], e["subject"], e["type"], e["id"])  # noqa: E731
    missing = [e for e in expected if e not in in_horizon]
    extra = [e for e in in_horizon if e not in expected]
    assert (missing, extra) == ([], [])
    assert sorted(in_horizon, key=key) == sorted(expected, key=key)
    assert {e["type"] for e in expected} == {
        "sla.escalation", "sla.breach", "sla.update_due", "maintenance.notice",
        "maintenance.lead_time_violation", "maintenance.reminder", "maintenance.cancelled",
    }  # fmt: skip
    assert [dict(r.headers)["sla-error-reason"] for r in dead] == [b"unknown_ticket"]
    named = {(e["subject"], e["data"]["policy"]) for e in expected if e["subject"] < "T-E"}
    if policy == "plain":
        assert {version for _, version in named} == {"default@1"}
    else:
        assert {s: v for s, v in named if s in ("T-B", "T-C", "T-D")} == {
            "T-B": "demo@1", "T-C": "cadence@1", "T-D": "demo@2"
        }  # fmt: skip
        kinds = {(e["subject"], e["type"]) for e in expected}
        # The renewal's 1.5 s breaches T-D before its resolve at 3 s (the demo's 10 s would
        # not); c3's cadence sends T-C update reminders (normal has none in the demo's).
        assert {("T-D", "sla.breach"), ("T-C", "sla.update_due")} <= kinds
