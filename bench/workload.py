"""The benchmarks' input, as CloudEvent bytes keyed by subject: generated ticket lives (the
engine benchmark's stream, and the end-to-end benchmarks' realistic mix) and piles of open
tickets whose deadlines fall where a benchmark wants them.

Every builder of a benchmark's events is here; a generated life is the same from run to run for
the same seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from bench.kafka import Record
from processor.sla.policy import Policy
from processor.sla.vocabulary import Severity, Tier

# Lives open over two weeks from a fixed epoch (2026-03-02T00:00:00Z), so the data is the same
# from run to run; long enough that most are resolved before the last one opens.
EPOCH: Final = datetime(2026, 3, 2, tzinfo=UTC)
_SPREAD: Final = timedelta(days=14)
_SEVERITIES: Final = (Severity.URGENT, Severity.HIGH, Severity.NORMAL, Severity.LOW)
_SEVERITY_WEIGHTS: Final = (5, 20, 50, 25)  # percent
_MINUTE: Final = timedelta(minutes=1)
_HOUR: Final = timedelta(hours=1)
_EVENTS_PER_TICKET: Final = 5.6  # the lives' mean: 560,731 events for 100,000 tickets


def cloudevent(type_: str, subject: str, at: datetime, data: dict[str, Any], n: int = 0) -> bytes:
    """A structured-mode CloudEvent; its id is `<subject>/<n>`."""
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{subject}/{n}",
            "source": "bench",
            "type": type_,
            "time": at.isoformat().replace("+00:00", "Z"),
            "subject": subject,
            "data": data,
        }
    )


def opened(subject: str, at: datetime, severity: str, tier: str, customer: str) -> bytes:
    data = {"customer_id": customer, "support_tier": tier, "severity": severity}
    return cloudevent("ticket.opened", subject, at, data)


def ticket_life(
    rng: random.Random, policy: Policy, number: int
) -> list[tuple[datetime, str, dict[str, Any]]]:
    """One ticket's life in time order: open, answer, updates, maybe a pause or a severity
    change, resolve and (mostly) close."""
    severity = rng.choices(_SEVERITIES, _SEVERITY_WEIGHTS)[0]
    tier = rng.choice(list(Tier))
    opened_at = EPOCH + _SPREAD * rng.random()
    target = policy.response_targets[(severity, tier)]
    # Most answers come within the target; one in seven is late (a breach).
    late = rng.random() < 0.15
    answered = opened_at + target * (rng.uniform(1.05, 3.0) if late else rng.uniform(0.05, 0.95))
    events = [
        (
            opened_at,
            "ticket.opened",
            {
                "customer_id": f"C-{number % 5000}",
                "support_tier": tier.value,
                "severity": severity.value,
            },
        ),
        (answered, "ticket.responded", {"agent_id": f"A-{number % 300}"}),
    ]
    required = policy.update_frequency.get(severity)
    every = required or timedelta(hours=12)
    at = answered
    for _ in range(rng.randint(0, 3)):
        # Updates around the required frequency: a share of windows is missed (update_due).
        at += every * rng.uniform(0.4, 1.3)
        events.append((at, "ticket.updated", {"agent_id": f"A-{number % 300}"}))
    if rng.random() < 0.1:
        pause = answered + (at - answered) * rng.random() + _MINUTE
        events.append((pause, "ticket.status_changed", {"status": "pending_customer"}))
        events.append(
            (
                pause + _HOUR * rng.uniform(0.5, 30),
                "ticket.status_changed",
                {"status": "in_progress"},
            )
        )
    if rng.random() < 0.1:
        change = opened_at + (at - opened_at) * rng.random()
        other = rng.choice([s for s in Severity if s is not severity])
        events.append((change, "ticket.severity_changed", {"severity": other.value}))
    # Resolved within about one update window of the last activity (up to two days if none).
    wait = every * rng.uniform(0.2, 1.5) if required else _MINUTE * rng.uniform(10, 2 * 24 * 60)
    resolved = max(t for t, _, _ in events) + wait
    events.append((resolved, "ticket.resolved", {}))
    if rng.random() < 0.8:
        events.append((resolved + _HOUR * rng.uniform(1, 72), "ticket.closed", {}))
    events.sort(key=lambda event: event[0])  # stable: the opening stays first
    return events


def lives(
    tickets: int, policy: Policy, seed: int, prefix: str, shift: timedelta = timedelta(0)
) -> list[Record]:
    """Every event of `tickets` generated lives (subjects `<prefix>-00000001`...), moved by
    `shift` from EPOCH, interleaved in global time order."""
    rng = random.Random(seed)
    stamped: list[tuple[datetime, int, int, bytes, bytes]] = []
    for number in range(tickets):
        subject = f"{prefix}-{number:08d}"
        for n, (at, type_, data) in enumerate(ticket_life(rng, policy, number)):
            at += shift
            raw = cloudevent(type_, subject, at, data, n)
            stamped.append((at, number, n, subject.encode(), raw))
    stamped.sort(key=lambda item: item[:3])
    return [(key, raw) for *_, key, raw in stamped]


def ticket_mix(events: int, policy: Policy, anchor: datetime, seed: int = 2026) -> list[Record]:
    """The first `events` events, in time order, of about events/5.6 generated ticket lives
    shifted to start one day after `anchor` (tickets still open at the cut stay open), so that
    no deadline falls due while a benchmark runs: the figure is the event path alone."""
    tickets = max(1, int(events / _EVENTS_PER_TICKET * 1.1))
    shift = anchor + timedelta(days=1) - EPOCH
    return lives(tickets, policy, seed, "BENCH", shift)[:events]


def open_tickets(
    count: int,
    prefix: str,
    now: datetime,
    due: Sequence[datetime] | None = None,
    target: timedelta = timedelta(hours=8),
    first: int = 0,
) -> list[Record]:
    """`count` ticket.opened events (subjects `<prefix>-<first>`... on), low severity, `time` =
    now: the first deadline (the initial response) is 8 hours away and nothing else is due
    before it.

    With `due` (one instant per ticket), ticket i is opened at `due[i] - target` instead, so its
    initial-response breach (low severity: the only deadline; `target` is the policy's low
    response target, 8 h in every tier of the default policy) falls due at `due[i]`."""
    tiers = ("premium", "select", "basic")
    records = []
    for i in range(first, first + count):
        subject = f"{prefix}-{i:08d}"
        at = now if due is None else due[i - first] - target
        value = opened(subject, at, "low", tiers[i % 3], f"C-{i % 5000}")
        records.append((subject.encode(), value))
    return records


def utcnow() -> datetime:
    return datetime.now(UTC)
