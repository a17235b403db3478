"""Stopping, killing and restarting a real worker loses no deadline and repeats no output id.

(a)/(b) a deadline falls due while the worker is stopped: it fires right after the restart, and
what had fired before the stop is not fired again (memory store: state from the changelog;
rocksdb: state from the local RocksDB files). (c)/(d) SIGKILL while events keep coming (twice,
once): at-least-once delivers every expected id (repeats allowed, of expected ids only);
exactly-once, read committed, delivers every expected id exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from rocksdict import AccessType, Options, Rdict

from processor import codec
from processor.sla.ticket import Ticket
from processor.spawn import free_port

from .worker_harness import (
    Worker,
    at,
    comparable,
    consume,
    event,
    produce,
    replayed,
)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sleep_until(moment: datetime) -> None:
    time.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0.0))


def opened(event_id: str, when: str, subject: str, severity: str, tier: str) -> bytes:
    data = {"customer_id": "c-" + subject, "support_tier": tier, "severity": severity}
    return event(event_id, "ticket.opened", when, subject, data)


# -- (a), (b): a deadline due while stopped -----------------------------------------------------


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_deadline_due_while_stopped_fires_after_restart(
    kafka_bootstrap: str, tmp_path: Path, store: str
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker", {"SLA_STORE": store})
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    # R-HIGH: step 1 now, breach at +5 s (while stopped), step 2 at +10 s (after the restart).
    # R-URGENT: step 1 now, breach at +1.25 s fired by a tick before the stop: with no table
    # write per deadline, only the stored fired watermark keeps it from firing again.
    lines = [
        opened("h1", at(base, 0), "R-HIGH", "high", "premium"),
        opened("u1", at(base, 0), "R-URGENT", "urgent", "premium"),
    ]
    tickets = worker.settings.topic_tickets
    expected = replayed(lines, base + timedelta(seconds=11))
    try:
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"wrong-key", v) for v in lines]))
        before = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=8, expect=3))
        assert len(before) == 3, [r.value for r in before]
        assert worker.stop() == 0, worker.tail()
        stopped_at = datetime.now(UTC)
        assert stopped_at < base + timedelta(seconds=4.5), "too slow to stop before the breach"
        sleep_until(base + timedelta(seconds=6))
        worker.start()
        restarted_at = datetime.now(UTC)
        sleep_until(base + timedelta(seconds=11.5))
        got = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=3, expect=7))
    finally:
        worker.stop()

    events = [orjson.loads(r.value) for r in got]
    assert Counter(e["id"] for e in events) == Counter(e["id"] for e in expected)
    assert sorted(map(_without_emitted, events), key=_order) == sorted(expected, key=_order)
    breach = next(e for e in events if e["subject"] == "R-HIGH" and e["type"] == "sla.breach")
    emitted = instant(breach["data"]["emitted_at"])
    assert stopped_at < emitted, "the breach fired before the stop: the test proves nothing"
    assert emitted - restarted_at < timedelta(seconds=2), "fired late after the restart"
    if store == "rocksdb://":
        _assert_in_rocksdb(worker, "R-HIGH")


def _without_emitted(value: dict[str, Any]) -> dict[str, Any]:
    return comparable(orjson.dumps(value))


def _order(e: dict[str, Any]) -> tuple[str, str, str]:
    return (e["time"], e["subject"], e["type"])


def _assert_in_rocksdb(worker: Worker, subject: str) -> None:
    """The ticket's state is in the worker's RocksDB files (read after the worker stopped)."""
    databases = sorted(worker.data_dir.rglob("tickets-*.db"))
    assert databases, f"no RocksDB table files under {worker.data_dir}"
    assert all((db / "CURRENT").is_file() for db in databases)
    found = []
    for db in databases:
        table = Rdict(str(db), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            found += [codec.decode_state(v) for k, v in table.items() if k == subject.encode()]
        finally:
            table.close()
    assert [type(s) for s in found] == [Ticket], found


# -- static membership ---------------------------------------------------------------------------


def test_a_static_member_killed_and_restarted_takes_its_partitions_back_at_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With SLA_GROUP_INSTANCE_ID the broker keeps a killed worker's place for its session
    (60 s here): the restarted worker rejoins under the same id, gets the same partitions back
    without a rebalance, and fires the deadline that fell due while it was dead long before
    that session would have timed out. Without static membership it would wait the 60 s."""
    session = 60.0
    worker = Worker(
        kafka_bootstrap,
        tmp_path / "worker",
        {
            "SLA_STORE": "rocksdb://",
            "SLA_GROUP_INSTANCE_ID": "worker-0",
            "SLA_SESSION_TIMEOUT_SECONDS": str(session),
        },
    )
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    lines = [opened("h1", at(base, 0), "S-HIGH", "high", "premium")]  # breach at +5 s
    tickets = worker.settings.topic_tickets
    try:
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"S-HIGH", v) for v in lines]))
        step = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=8, expect=1))
        assert len(step) == 1, [r.value for r in step]  # step 1: the state is stored
        time.sleep(worker.settings.commit_interval_seconds + 0.5)  # and its offset committed
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        killed_at = datetime.now(UTC)
        assert killed_at < base + timedelta(seconds=4.5), "too slow to kill before the breach"
        sleep_until(base + timedelta(seconds=6))
        worker.start(timeout=session / 2)  # a rebalance would wait for the old session: 60 s
        got = asyncio.run(
            consume(
                kafka_bootstrap,
                [worker.settings.topic_breaches],
                seconds=session / 4,
                expect=1,
            )
        )
    finally:
        worker.stop()
    breaches = [orjson.loads(r.value) for r in got]
    assert [b["subject"] for b in breaches] == ["S-HIGH"], worker.excerpt()
    emitted = instant(breaches[0]["data"]["emitted_at"])
    assert emitted - killed_at < timedelta(seconds=session / 2), worker.excerpt()
    log = worker.log.read_text(errors="replace")
    assert log.count("(generation 1)") == 2, worker.excerpt()  # the same generation: no rebalance


def test_a_static_member_restarted_on_another_address_rejoins_as_a_new_member(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Faust refuses an assignment recorded for another web address, for good (its coordinator
    stops on an assertion and the worker hangs). The id the broker sees names the address, so a
    worker restarted elsewhere is a new member: it is assigned the partitions once the old
    member's session times out, and runs."""
    worker = Worker(
        kafka_bootstrap,
        tmp_path / "worker",
        {"SLA_STORE": "rocksdb://", "SLA_GROUP_INSTANCE_ID": "worker-0"},
    )
    worker.create_topics()
    worker.start()
    try:
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        worker.env["SLA_WEB_PORT"] = str(free_port())
        worker.start(timeout=worker.settings.session_timeout_seconds + 30)
        status, body = worker.get("/metrics")
        assert status == 200, body
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert "Unexpected error in coordinator routine" not in log, worker.excerpt()
    assert log.count("Joined group") >= 2, worker.excerpt()


# -- the backlog before the deadlines --------------------------------------------------------


def test_a_restarted_worker_reads_its_backlog_before_firing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A ticket closed while the worker was down, its breach due during the downtime: after the
    restart the close (behind 4,000 other records of its partition) is applied before the tick
    that fires the breach is sent (the firing rule, decision 27), so the breach the close
    cancelled is never emitted."""
    worker = Worker(kafka_bootstrap, tmp_path / "worker", {"SLA_STORE": "memory://"})
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    tickets = worker.settings.topic_tickets
    # R-HIGH premium: step 1 at once, breach at +5 s; closed at +1 s while the worker is down.
    first = [opened("b1", at(base, 0), "B-HIGH", "high", "premium")]
    # Padded to span several fetches (1 MiB per partition each), so that the tick asked for
    # at the restart lands in the middle of the backlog.
    pad = {"customer_id": "c", "support_tier": "basic", "severity": "low", "notes": "x" * 2000}
    filler = [event(f"f{i}", "ticket.opened", at(base, 1), f"F-{i:04d}", pad) for i in range(4000)]
    close = [event("b2", "ticket.closed", at(base, 1), "B-HIGH")]
    try:
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"B-HIGH", v) for v in first]))
        before = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=8, expect=1))
        assert len(before) == 1, [r.value for r in before]
        assert worker.stop() == 0, worker.tail()
        backlog = [(tickets, b"B-HIGH", v) for v in [*filler, *close]]
        asyncio.run(produce(kafka_bootstrap, backlog))
        sleep_until(base + timedelta(seconds=6))
        worker.start()
        sleep_until(base + timedelta(seconds=12))
        got = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=3))
    finally:
        worker.stop()

    expected = replayed([*first, *filler, *close], base + timedelta(seconds=12))
    mine = [comparable(r.value) for r in got if orjson.loads(r.value)["subject"] == "B-HIGH"]
    assert [e for e in expected if e["subject"] == "B-HIGH"] == mine
    assert [(e["type"], e["data"].get("step")) for e in mine] == [("sla.escalation", 1)]


# -- (c), (d): SIGKILL while events keep coming ---------------------------------------------------

SPREAD = 6.0  # seconds over which tickets are opened
HORIZON = 28.0  # outputs due up to base + HORIZON are compared with replay
FIRST_KILL = 3.0  # seconds after base
SECOND_KILL = 12.0  # (at-least-once) at the earliest, and once the restarted worker ran 1.5 s


def crash_scenario(base: datetime, tickets: int = 128) -> list[tuple[float, str, bytes]]:
    """(offset, topic kind, event), sent at base + offset with event time base + offset.

    A killed worker applies the events sent while it was down late, after its restart (in
    exactly-once mode those of an aborted transaction too, up to a minute late here), and a
    deadline that has fired cannot be taken back by a late event (docs/decisions.md, 25).
    So no event here removes or moves a deadline of its subject that falls due within ninety
    seconds after the event: applied that late, the outputs are still replay's. A late
    event's *new* deadlines (a raised severity, a started update clock) must all fire.
    """
    rows: list[tuple[float, str, bytes]] = []

    def add(offset: float, kind: str, event_id: str, type_: str, subject: str, data: Any = None):
        rows.append((offset, kind, event(event_id, type_, at(base, offset), subject, data)))

    for i in range(tickets):
        o, s, t = SPREAD * i / tickets, f"K-{i:03d}", "tickets"
        match i % 8:
            case 0:  # every step and the breach from timers; resolved after the last step
                rows.append((o, t, opened(f"{s}-1", at(base, o), s, "urgent", "premium")))
                add(o + 20.5, t, f"{s}-2", "ticket.resolved", s)
                add(o + 21, t, f"{s}-3", "ticket.closed", s)
            case 1:  # step 1, breach at +7.5 s, steps 2 and 3 at +10 s and +20 s
                rows.append((o, t, opened(f"{s}-1", at(base, o), s, "high", "select")))
            case 2:  # high; raised to urgent once the high ladder is done: urgent's steps at once
                rows.append((o, t, opened(f"{s}-1", at(base, o), s, "high", "premium")))
                add(o + 21, t, f"{s}-2", "ticket.severity_changed", s, {"severity": "urgent"})
            case 3:  # urgent by classification, responded after the breach: update clock
                data = {"customer_id": "c", "support_tier": "basic", "impact": "service_down",
                        "problem_type": "network", "workaround_available": False}  # fmt: skip
                add(o, t, f"{s}-1", "ticket.opened", s, data)
                add(o + 2, t, f"{s}-2", "ticket.responded", s, {"agent_id": "a"})
            case 4:  # high, responded after the breach; its 120 s update clock restarted, paused
                rows.append((o, t, opened(f"{s}-1", at(base, o), s, "high", "basic")))
                add(o + 11, t, f"{s}-2", "ticket.responded", s)
                add(o + 12, t, f"{s}-3", "ticket.updated", s)
                add(o + 13, t, f"{s}-4", "ticket.status_changed", s, {"status": "pending_customer"})
                add(o + 14, t, f"{s}-5", "ticket.status_changed", s, {"status": "in_progress"})
            case 5:  # resolved after the last step, reopened: cycle 2 starts with step 1
                rows.append((o, t, opened(f"{s}-1", at(base, o), s, "urgent", "premium")))
                add(o + 20.5, t, f"{s}-2", "ticket.resolved", s)
                add(o + 21, t, f"{s}-3", "ticket.reopened", s)
            case 6:  # a maintenance: notice, violation, reminder; rescheduled; cancelled
                m = f"KM-{i:03d}"
                window = {"kind": "planned", "summary": "s",
                          "window_start": at(base, o + 125), "window_end": at(base, o + 135)}  # fmt: skip
                add(o, "maintenance", f"{m}-1", "maintenance.scheduled", m, window)
                moved = {"window_start": at(base, o + 130), "window_end": at(base, o + 140)}
                add(o + 6, "maintenance", f"{m}-2", "maintenance.rescheduled", m, moved)
                add(o + 12, "maintenance", f"{m}-3", "maintenance.cancelled", m)
            case 7:  # low by problem type: its breach is due only after the horizon
                data = {"customer_id": "c", "support_tier": "basic", "problem_type": "question"}
                add(o, t, f"{s}-1", "ticket.opened", s, data)
    return sorted(rows, key=lambda row: row[0])


def _key(value: bytes) -> bytes:
    """Every other subject keyed by a tenant instead: those go through the re-key topic."""
    subject: str = orjson.loads(value)["subject"]
    number = int(subject.rsplit("-", 1)[1])
    return subject.encode() if number % 2 else f"tenant-{number % 5}".encode()


async def _produce_in_real_time(
    bootstrap: str, topics: dict[str, str], base: datetime, rows: list[tuple[float, str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for offset, kind, value in rows:
            delay = (base + timedelta(seconds=offset) - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(topics[kind], value, key=_key(value))
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("guarantee", "kills"),
    # An exactly-once restart takes ~6 s (recovery must find the commit markers at the
    # changelogs' ends; processor.faust_fixes.recovery_idle).
    [("at_least_once", 2), ("exactly_once", 1)],
)
def test_sigkill_mid_stream_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, guarantee: str, kills: int
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker", {"SLA_PROCESSING_GUARANTEE": guarantee})
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC) + timedelta(seconds=1)
    rows = crash_scenario(base)
    horizon = base + timedelta(seconds=HORIZON)
    expected = {e["id"]: e for e in replayed([v for *_, v in rows], horizon)}
    topics = {
        "tickets": worker.settings.topic_tickets,
        "maintenance": worker.settings.topic_maintenance,
    }
    failure: list[BaseException] = []

    def producing() -> None:
        try:
            asyncio.run(_produce_in_real_time(kafka_bootstrap, topics, base, rows))
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    producer = threading.Thread(target=producing, daemon=True)
    producer.start()
    try:
        sleep_until(base + timedelta(seconds=FIRST_KILL))
        worker.kill()
        worker.start()
        if kills == 2:
            sleep_until(max(base + timedelta(seconds=SECOND_KILL), _in(1.5)))
            worker.kill()
            worker.start()
        sleep_until(max(base + timedelta(seconds=HORIZON), _in(0)))
        # The restarted worker works through its backlog first: wait for every expected id
        # (bounded), then a little longer for repeats.
        got = asyncio.run(
            consume(kafka_bootstrap, worker.outputs, seconds=30, done=_all_of(expected), settle=3)
        )
        dead = asyncio.run(consume(kafka_bootstrap, _dlq(worker), seconds=1))
    finally:
        producer.join(timeout=30)
        worker.stop()
    assert not failure, failure
    assert worker.log.read_text().count("Worker]: Ready") == 1 + kills

    later = {e["id"]: e for e in replayed([v for *_, v in rows], datetime.now(UTC))}
    outputs = [comparable(r.value) for r in got]
    counts = Counter(e["id"] for e in outputs)
    assert [r.value for r in dead] == [], worker.excerpt()
    if guarantee == "at_least_once":
        assert worker.skipped_offsets() == []
    arrived = {e["id"] for e in outputs if instant(e["time"]) <= horizon}
    lost = [_show(e) for i, e in expected.items() if i not in arrived]
    assert lost == [], f"lost; the worker's log said:\n{worker.excerpt()}"
    assert [_show(e) for e in outputs if e != later.get(e["id"])] == [], "not replay's"
    if guarantee == "exactly_once":
        assert {i: n for i, n in counts.items() if n > 1} == {}, "an id was delivered twice"
    assert len(expected) > 400, "the scenario should give a few hundred outputs"


def _all_of(expected: dict[str, Any]) -> Callable[[list[Any]], bool]:
    def arrived(records: list[Any]) -> bool:
        return set(expected) <= {orjson.loads(r.value)["id"] for r in records}

    return arrived


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _show(e: dict[str, Any]) -> str:
    return f"{e['time']} {e['subject']} {e['type']} {e['data'].get('step') or ''}"


def _dlq(worker: Worker) -> list[str]:
    return [worker.settings.topic_tickets + ".dlq", worker.settings.topic_maintenance + ".dlq"]
