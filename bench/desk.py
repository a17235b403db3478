"""A year of a large help desk's history, generated: the input of the what-if and report figures.

    python -m bench.desk OUT.jsonl [--tickets 1000000] [--seed 2026] [--start 2026-01-01]

Tickets arrive through the year on a weekly rhythm (weekdays and office hours busier) from
customers of Zipf-like sizes, each with a support tier and a region (amer, emea, apac; the
region goes into `ticket.opened` for a policy set's rules). Severities 3 % urgent, 12 % high,
55 % normal, 30 % low; a tenth opened without a severity (impact and problem type instead: they
are answered on the time scale of the severity drawn for them, which the rules may classify
otherwise, so some are late for the severity they get). Most
are answered within their target, some late, some never; urgent and high tickets get progress
updates about as often as the seed asks, sometimes late; some wait on the customer, change
severity, are reopened. Resolved after hours to days, closed two days later. About two
maintenances a day, some at short notice, some rescheduled or cancelled. Lines are in time
order, as a desk's log would be; deterministic for a seed.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

_SEVERITIES: Final = (("urgent", 0.03), ("high", 0.12), ("normal", 0.55), ("low", 0.30))
_TARGET_MIN: Final = {"urgent": 15, "high": 90, "normal": 360, "low": 480}  # a middle tier's
_UPDATE_MIN: Final = {"urgent": 120, "high": 1440}
_TIERS: Final = ("premium", "select", "basic")
_REGIONS: Final = (("amer", 0.45), ("emea", 0.35), ("apac", 0.20))
_IMPACTS: Final = ("service_down", "partial", "minor", "none")
_PROBLEMS: Final = ("api", "network", "how_to", "database", "billing", "performance", "question")
# Hour-of-week weights: weekdays 08-18 UTC busy, nights and weekends quiet.
_WEEK: Final = [
    (5.0 if 8 <= h < 18 else 1.2) if d < 5 else 0.6 for d in range(7) for h in range(24)
]
_MIN: Final = timedelta(minutes=1)

Line = tuple[datetime, int, bytes]


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"e{self.n}"


def _event(ids: _Ids, kind: str, subject: str, at: datetime, data: dict[str, Any]) -> bytes:
    # A right-sized copy: orjson's result keeps its 4 KiB working buffer (19 GB for a year).
    return bytes(memoryview(orjson.dumps({
        "specversion": "1.0", "id": ids.next(), "source": "bench.desk", "type": kind,
        "time": at.isoformat(timespec="seconds").replace("+00:00", "Z"), "subject": subject,
        "data": data,
    })))  # fmt: skip


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([p[0] for p in pairs], [p[1] for p in pairs])[0]


def _arrival(rng: random.Random, start: datetime, days: int) -> datetime:
    week = rng.randrange(days // 7 + 1)
    hour = rng.choices(range(168), _WEEK)[0]
    at = start + timedelta(weeks=week, hours=hour, seconds=rng.randrange(3600))
    return min(at, start + timedelta(days=days) - _MIN)


class Customers:
    """Zipf-like sizes: customer k opens tickets in proportion to 1/k."""

    def __init__(self, rng: random.Random, count: int) -> None:
        self.names = [f"cust-{k:05d}" for k in range(count)]
        self.weights = [1 / (k + 1) for k in range(count)]
        self.tier = {n: rng.choice(_TIERS) for n in self.names}
        self.region = {n: _weighted(rng, _REGIONS) for n in self.names}

    def pick(self, rng: random.Random, n: int) -> list[str]:
        return rng.choices(self.names, self.weights, k=n)


def _ticket(
    rng: random.Random, ids: _Ids, subject: str, customer: str, customers: Customers, at: datetime
) -> list[Line]:
    out: list[Line] = []
    seq = 0

    def emit(kind: str, when: datetime, data: dict[str, Any] | None = None) -> None:
        nonlocal seq
        out.append((when, seq, _event(ids, kind, subject, when, data or {})))
        seq += 1

    severity = _weighted(rng, _SEVERITIES)
    opened: dict[str, Any] = {"customer_id": customer, "support_tier": customers.tier[customer],
                              "region": customers.region[customer]}  # fmt: skip
    if rng.random() < 0.1:
        opened |= {"impact": rng.choice(_IMPACTS), "problem_type": rng.choice(_PROBLEMS)}
    else:
        opened["severity"] = severity
    emit("ticket.opened", at, opened)
    target = _TARGET_MIN[severity]
    now = at
    if rng.random() < 0.96:  # answered: most within the target, a share late
        share = rng.uniform(0.05, 0.95) if rng.random() < 0.85 else rng.uniform(1.0, 3.0)
        now = at + target * share * _MIN
        emit("ticket.responded", now, {"agent_id": f"agent-{rng.randrange(400)}"})
    if rng.random() < 0.05:
        now += rng.uniform(10, 600) * _MIN
        emit("ticket.severity_changed", now, {"severity": _weighted(rng, _SEVERITIES)})
    lifetime = at + timedelta(hours=rng.lognormvariate(2.5, 1.2))
    cadence = _UPDATE_MIN.get(severity)
    while cadence is not None:
        now += cadence * rng.uniform(0.5, 1.15) * _MIN
        if now >= lifetime:
            break
        if rng.random() < 0.08:
            emit("ticket.status_changed", now, {"status": "pending_customer"})
            now += rng.uniform(30, 600) * _MIN
            emit("ticket.status_changed", now, {"status": "open"})
        else:
            emit("ticket.updated", now, {"agent_id": f"agent-{rng.randrange(400)}"})
    now = max(now, lifetime) + _MIN
    emit("ticket.resolved", now)
    if rng.random() < 0.03:
        now += rng.uniform(60, 2880) * _MIN
        emit("ticket.reopened", now)
        now += rng.uniform(60, 1440) * _MIN
        emit("ticket.resolved", now)
    emit("ticket.closed", now + timedelta(days=2))
    return out


def _maintenance(rng: random.Random, ids: _Ids, subject: str, at: datetime) -> list[Line]:
    notice = timedelta(days=rng.choice((1, 3, 5, 7, 10)))
    start = at + notice
    window = {"kind": "emergency" if rng.random() < 0.1 else "planned", "summary": "maintenance",
              "window_start": start.isoformat(), "window_end": (start + 2 * 60 * _MIN).isoformat()}  # fmt: skip
    out = [(at, 0, _event(ids, "maintenance.scheduled", subject, at, window))]
    if rng.random() < 0.15:
        later = at + timedelta(hours=rng.uniform(1, 20))
        moved = start + timedelta(days=2)
        out.append((later, 1, _event(ids, "maintenance.rescheduled", subject, later, {
            "window_start": moved.isoformat(), "window_end": (moved + 120 * _MIN).isoformat()})))  # fmt: skip
    elif rng.random() < 0.05:
        later = at + timedelta(hours=rng.uniform(1, 20))
        out.append((later, 1, _event(ids, "maintenance.cancelled", subject, later, {})))
    return out


def generate(tickets: int, seed: int, start: datetime, days: int = 365) -> Iterator[bytes]:
    """The history's lines (CloudEvent JSON, no newline), in time order."""
    rng = random.Random(seed)
    ids = _Ids()
    customers = Customers(rng, max(tickets // 500, 10))
    lines: list[tuple[datetime, int, int, bytes]] = []
    for n, customer in enumerate(customers.pick(rng, tickets)):
        at = _arrival(rng, start, days)
        for when, seq, raw in _ticket(rng, ids, f"TCK-{n:07d}", customer, customers, at):
            lines.append((when, n, seq, raw))
    for n in range(days * 2):
        at = _arrival(rng, start, days)
        for when, seq, raw in _maintenance(rng, ids, f"MNT-{n:05d}", at):
            lines.append((when, tickets + n, seq, raw))
    lines.sort()  # (time, subject, sequence): per subject in order, overall by time
    for *_, raw in lines:
        yield raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start).astimezone(UTC)
    count = 0
    with args.out.open("wb") as out:
        for line in generate(args.tickets, args.seed, start):
            out.write(line + b"\n")
            count += 1
    sys.stderr.write(f"{args.out}: {count:,} events of {args.tickets:,} tickets\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
