"""Bad input of every kind goes to its topic's dead-letter topic, unchanged, with the reason and
origin headers; the counts show on /metrics; good events around it are all applied."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from processor.partitioning import partition_of

from .worker_harness import Worker, at, consume, event, produce_to, replayed

PARTITIONS = 4


@dataclass(frozen=True)
class Case:
    """One input record and what must become of it: a reason (dead letter) or None (applied)."""

    name: str
    topic: str  # "tickets" or "maintenance"
    value: bytes | None
    reason: str | None = None
    subject: str | None = None  # placed on a partition other than its own: re-keyed first
    rekey: bool = False
    duplicate: bool = False

    @property
    def error_class(self) -> str:
        assert self.reason is not None
        parse_level = self.reason not in ENGINE_REASONS
        return "InvalidEvent" if parse_level else "Rejected"


ENGINE_REASONS = {
    "unclassifiable", "unknown_ticket", "out_of_order", "not_resolved", "ticket_closed",
    "already_opened", "unknown_maintenance", "already_scheduled", "maintenance_cancelled",
    "not_escalated",
}  # fmt: skip


def envelope(base: datetime, **changes: Any) -> bytes:
    """A valid urgent ticket.opened, with attributes replaced (or removed when given `...`)."""
    body: dict[str, Any] = {
        "specversion": "1.0", "id": "env-1", "source": "tests", "type": "ticket.opened",
        "time": at(base, 0), "subject": "T-ENVELOPE",
        "data": {"customer_id": "c", "support_tier": "premium", "severity": "urgent"},
    }  # fmt: skip
    body.update(changes)
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def opened(base: datetime, event_id: str, subject: str, seconds: float, **data: Any) -> bytes:
    fields = {"customer_id": "c-" + subject, "support_tier": "premium", "severity": "low", **data}
    return event(event_id, "ticket.opened", at(base, seconds), subject, fields)


def window(base: datetime, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"window_start": at(base, start), "window_end": at(base, end), **extra}


def cases(base: datetime) -> list[Case]:
    t, m = "tickets", "maintenance"
    planned = {"kind": "planned", "summary": "db"}
    bad_data = {"customer_id": "c", "support_tier": "premium"}
    return [
        Case("good urgent", t, opened(base, "g1", "G-URGENT", 0, severity="urgent")),
        Case("malformed bytes", t, b"{not json", "malformed_json"),
        Case("invalid utf-8", t, b'{"specversion":"1.0","id":"\xff\xfe"}', "malformed_json"),
        Case("empty value", t, b"", "malformed_json"),
        Case("json array", t, b"[1, 2]", "not_an_object"),
        Case("json string", t, b'"ticket"', "not_an_object"),
        Case("json null", m, b"null", "not_an_object"),
        Case("missing type", t, envelope(base, type=...), "unknown_type"),
        Case("unknown type", t, envelope(base, type="ticket.exploded"), "unknown_type"),
        Case("good high", t, opened(base, "g2", "G-HIGH", 0, severity="high"), rekey=True),
        Case("wrong specversion", t, envelope(base, specversion="0.3"), "invalid_envelope"),
        Case("missing id", t, envelope(base, id=...), "invalid_envelope"),
        Case("missing subject", t, envelope(base, subject=...), "invalid_envelope"),
        Case("missing time", t, envelope(base, time=...), "invalid_envelope"),
        Case("naive time", t, envelope(base, time="2026-11-25T10:00:00"), "invalid_envelope"),
        Case("year 9999", t, envelope(base, time="9999-01-01T00:00:00Z"), "invalid_envelope"),
        Case("tier a number", t, envelope(base, data={**bad_data, "support_tier": 5}), "invalid_data"),
        Case("bool a string", t, envelope(base, data={**bad_data, "workaround_available": "yes"}), "invalid_data"),
        Case("unknown severity", t, envelope(base, data={**bad_data, "severity": "critical"}), "invalid_data"),
        Case("no customer_id", t, envelope(base, data={"support_tier": "basic", "severity": "low"}), "invalid_data"),
        Case("data a string", t, envelope(base, data="urgent"), "invalid_data"),
        Case("huge payload", t, envelope(base, data={**bad_data, "notes": "x" * 70_000}), "too_large"),
        Case("ticket event on maintenance topic", m, envelope(base), "wrong_topic"),
        Case("maintenance event on ticket topic", t, event("w1", "maintenance.cancelled", at(base, 0), "M-W"), "wrong_topic"),
        Case("window ends before it starts", m, event("w2", "maintenance.scheduled", at(base, 0), "M-BAD", {**planned, **window(base, 900, 800)}), "invalid_data"),
        Case("unclassifiable open", t, opened(base, "u1", "T-UNCLASSIFIED", 0, severity=None), "unclassifiable"),
        Case("never opened", t, event("n1", "ticket.responded", at(base, 0), "T-NEVER"), "unknown_ticket", rekey=True),
        Case("setup: opened", t, opened(base, "o1", "T-OOO", 0), subject="T-OOO"),
        Case("out of order", t, event("o2", "ticket.updated", at(base, -5), "T-OOO"), "out_of_order", subject="T-OOO"),
        Case("setup: opened (re-keyed)", t, opened(base, "r1", "T-REOPEN", 0), subject="T-REOPEN", rekey=True),
        Case("reopen unresolved", t, event("r2", "ticket.reopened", at(base, 1), "T-REOPEN"), "not_resolved", subject="T-REOPEN", rekey=True),
        Case("repeated id", t, opened(base, "r1", "T-REOPEN", 0), subject="T-REOPEN", rekey=True, duplicate=True),
        Case("setup: opened ", t, opened(base, "c1", "T-CLOSED", 0), subject="T-CLOSED"),
        Case("setup: closed", t, event("c2", "ticket.closed", at(base, 1), "T-CLOSED"), subject="T-CLOSED"),
        Case("event after close", t, event("c3", "ticket.updated", at(base, 2), "T-CLOSED"), "ticket_closed", subject="T-CLOSED"),
        Case("opened after close", t, opened(base, "c4", "T-CLOSED", 3), "ticket_closed", subject="T-CLOSED"),
        Case("setup: opened  ", t, opened(base, "a1", "T-TWICE", 0), subject="T-TWICE", rekey=True),
        Case("already opened", t, opened(base, "a2", "T-TWICE", 1), "already_opened", subject="T-TWICE", rekey=True),
        Case("reschedule unknown", m, event("x1", "maintenance.rescheduled", at(base, 0), "M-UNKNOWN", window(base, 900, 960)), "unknown_maintenance", rekey=True),
        Case("good maintenance", m, event("k1", "maintenance.scheduled", at(base, 0), "M-GOOD", {**planned, **window(base, 900, 960)}), subject="M-GOOD"),
        Case("scheduled twice", m, event("k2", "maintenance.scheduled", at(base, 1), "M-GOOD", {**planned, **window(base, 900, 960)}), "already_scheduled", subject="M-GOOD"),
        Case("setup: cancelled", m, event("k3", "maintenance.cancelled", at(base, 2), "M-GOOD"), subject="M-GOOD"),
        Case("after cancel", m, event("k4", "maintenance.rescheduled", at(base, 3), "M-GOOD", window(base, 990, 999)), "maintenance_cancelled", subject="M-GOOD"),
        Case("tombstone", t, None, "malformed_json"),
        Case("duplicate subject", t, opened(base, "d1", "T-DUP-A", 0, severity="urgent")[:-1] + b',"subject":"T-DUP-B"}', "malformed_json"),
        Case("NaN in an extra field", t, envelope(base, id="nan-1")[:-1] + b',"x":NaN}', "malformed_json"),
        Case("NUL in subject", t, envelope(base, id="nul-1", subject="T-\u0000-1"), "invalid_envelope"),
    ]  # fmt: skip


def sentinels(base: datetime) -> list[Case]:
    """A last good event on every partition of both input topics: nothing behind them stalled."""
    found: list[Case] = []
    for topic, kind, data in (
        ("tickets", "ticket.opened", {"customer_id": "c", "support_tier": "basic", "severity": "urgent"}),
        ("maintenance", "maintenance.scheduled", {"kind": "emergency", "summary": "s", **window(base, 900, 960)}),
    ):  # fmt: skip
        for p in range(PARTITIONS):
            subject = next(
                f"S-{topic}-{i}"
                for i in range(99)
                if partition_of(f"S-{topic}-{i}", PARTITIONS) == p
            )
            found.append(Case("sentinel", topic, event(f"{subject}-1", kind, at(base, 5), subject, data), subject=subject))  # fmt: skip
    return found


def upstream_key(case: Case, index: int) -> bytes | None:
    """Some records keyed, some not; a tombstone needs a key to be sent at all."""
    return b"upstream-key" if index % 3 or case.value is None else None


def placement(case: Case, index: int) -> int:
    """The partition a case is produced to: its subject's own one, or another when re-keyed."""
    subject = case.subject or _subject(case.value)
    if subject is None:
        return index % PARTITIONS
    owner = partition_of(subject, PARTITIONS)
    return (owner + 1) % PARTITIONS if case.rekey else owner


def _subject(value: bytes | None) -> str | None:
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    subject = parsed.get("subject") if isinstance(parsed, dict) else None
    return subject if isinstance(subject, str) else None


def samples(metrics: dict[Any, float], name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """One metric's samples keyed by the values of `labels`."""
    found = {}
    for (sample, frozen), value in metrics.items():
        if sample == name:
            by_name = dict(frozen)
            assert set(by_name) == set(labels), by_name
            found[tuple(by_name[label] for label in labels)] = value
    return found


def test_bad_input_is_dead_lettered_and_good_input_applied(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    all_cases = cases(base) + sentinels(base)
    topics = {
        "tickets": worker.settings.topic_tickets,
        "maintenance": worker.settings.topic_maintenance,
    }
    bad = [c for c in all_cases if c.reason]
    assert len({c.name for c in bad}) >= 20
    # Every reason of decision 17 but unsupported_content_type (test_processor_binary_mode.py).
    assert len({c.reason for c in bad}) == 16
    good = [c for c in all_cases if not c.reason and not c.duplicate]
    # No good event here moves a deadline of its subject: replay is exact up to any instant.
    expected = replayed([c.value for c in good if c.value], base + timedelta(seconds=5))
    try:
        keys = [upstream_key(c, i) for i, c in enumerate(all_cases)]
        records = [
            (topics[c.topic], placement(c, i), key, c.value)
            for i, (c, key) in enumerate(zip(all_cases, keys, strict=True))
        ]
        landed = asyncio.run(produce_to(kafka_bootstrap, records))
        dlqs = [f"{name}.dlq" for name in topics.values()]
        dead = asyncio.run(consume(kafka_bootstrap, dlqs, seconds=20, expect=len(bad)))
        outputs = asyncio.run(
            consume(kafka_bootstrap, worker.outputs, seconds=20, expect=len(expected))
        )
        metrics = worker.metrics()
    finally:
        worker.stop()

    # Every bad record, and nothing else, on its own topic's dead-letter topic, unchanged.
    origin = {
        (topics[c.topic], md.partition, md.offset): (c, key)
        for c, md, key in zip(all_cases, landed, keys, strict=True)
    }
    seen = []
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        key = (
            headers["sla-origin-topic"],
            int(headers["sla-origin-partition"]),
            int(headers["sla-origin-offset"]),
        )
        case, upstream = origin[key]
        seen.append(case.name)
        assert record.topic == f"{topics[case.topic]}.dlq", case.name
        assert (headers["sla-error-reason"], headers["sla-error-class"]) == (
            case.reason,
            case.error_class,
        ), case.name
        assert headers["sla-error-message"], case.name
        assert record.value == case.value, case.name
        # The original key, or for a re-keyed record the subject it was re-keyed by.
        rekeyed_by = str(case.subject or _subject(case.value)).encode()
        assert record.key == (rekeyed_by if case.rekey else upstream), case.name
    assert sorted(seen) == sorted(c.name for c in bad)

    # The counts on /metrics: rejections by (topic, reason), applied events, the one duplicate.
    rejected = Counter((topics[c.topic], c.reason) for c in bad)
    assert samples(metrics, "sla_events_rejected_total", "topic", "reason") == rejected
    applied = Counter((topics[c.topic], orjson.loads(c.value or b"")["type"]) for c in good)
    assert samples(metrics, "sla_events_processed_total", "topic", "type") == applied
    duplicates = samples(metrics, "sla_events_duplicate_total", "topic")
    assert duplicates == {(topics["tickets"],): 1.0}

    # Every good event's immediate outputs arrived (sentinels included), none for a bad subject.
    got = {orjson.loads(r.value)["id"] for r in outputs}
    assert {e["id"] for e in expected} <= got
    subjects = {orjson.loads(r.value)["subject"] for r in outputs}
    assert {c.subject for c in sentinels(base)} <= subjects
    assert subjects <= {_subject(c.value) for c in good}


async def _produce_compressed(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    """gzip batches, one record each: far over a megabyte of value, a few kilobytes on the wire."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip",
                                max_request_size=2**26, max_batch_size=2**26)  # fmt: skip
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def test_records_over_a_megabyte_reach_the_dead_letter_topic_cut_to_fit(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    tickets = worker.settings.topic_tickets
    huge = {
        "2 MB value": (b"H-2MB", b'{"pad":"' + b"a" * 2_000_000 + b'"}'),
        "20 MB value": (b"H-20MB", b'{"pad":"' + b"b" * 20_000_000 + b'"}'),
        "2 MB key": (b"K" * 2_000_000, b'{"pad":"' + b"c" * 70_000 + b'"}'),
    }
    before = opened(base, "h-before", "H-BEFORE", 0, severity="urgent")
    after = opened(base, "h-after", "H-AFTER", 1, severity="urgent")
    both = {"H-BEFORE", "H-AFTER"}
    try:
        records = [(tickets, b"H-BEFORE", before), *((tickets, k, v) for k, v in huge.values()),
                   (tickets, b"H-AFTER", after)]  # fmt: skip
        asyncio.run(_produce_compressed(kafka_bootstrap, records))
        dead = asyncio.run(consume(kafka_bootstrap, [f"{tickets}.dlq"], seconds=30, expect=3))
        outputs = asyncio.run(consume(
            kafka_bootstrap, worker.outputs, seconds=20,
            done=lambda got: both <= {orjson.loads(r.value)["subject"] for r in got},
        ))  # fmt: skip
        metrics = worker.metrics()
    finally:
        worker.stop()
    assert "record failed" not in worker.log.read_text()
    assert len(dead) == 3, worker.tail()
    by_size = {int(dict(r.headers)["sla-original-value-bytes"]): r for r in dead}
    for name, (key, value) in huge.items():
        record = by_size[len(value)]
        headers = dict(record.headers)
        assert headers["sla-error-reason"] == b"too_large", name
        value_cut = len(value) > 1_000_000
        assert value.startswith(record.value), name
        assert len(record.value) > 900_000 if value_cut else record.value == value, name
        assert key.startswith(record.key), name
        cut = [part for part, was in (("key", len(key) > 1024), ("value", value_cut)) if was]
        assert headers["sla-truncated"] == ",".join(cut).encode(), name
        assert headers["sla-original-key-bytes"] == str(len(key)).encode(), name
        assert headers["sla-original-value-sha256"] == hashlib.sha256(value).hexdigest().encode()
    rejected = samples(metrics, "sla_events_rejected_total", "topic", "reason")
    assert rejected == {(tickets, "too_large"): 3.0}
    # The events on either side were applied: the urgent tickets' first escalations went out.
    assert both <= {orjson.loads(r.value)["subject"] for r in outputs}
