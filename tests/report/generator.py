"""A reproducible history for the report: a few hundred ticket lives over several weeks, several
customers, every severity and tier, acknowledgements, pauses, severity changes, reopenings, and
maintenance windows announced with and without enough notice.

Unlike `tests/histories.py` (times on and next to deadlines, invalid events, repeats), these are
plausible lives, so that every figure of the report has something to show.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from processor.sla.policy import Policy
from processor.sla.vocabulary import Severity, Tier

START: Final = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
_MIN: Final = timedelta(minutes=1)
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)
_SEVERITIES: Final = ("urgent", "high", "normal", "low")
_WEIGHTS: Final = (10, 25, 40, 25)
_TIERS: Final = ("premium", "select", "basic")
HOSTILE: Final = "</script><script>alert(1)</script>"

Life = list[tuple[datetime, str, dict[str, Any] | None]]


def history(
    policy: Policy,
    *,
    seed: int = 7,
    tickets: int = 300,
    weeks: int = 6,
    customers: tuple[str, ...] = ("ACME", "Globex", "Initech", "Umbrella", "Hooli", "Stark"),
    maintenances: int = 16,
) -> list[bytes]:
    """CloudEvent lines in time order; the same for the same arguments."""
    rng = random.Random(seed)
    span = weeks * 7 * _DAY
    stamped: list[tuple[datetime, str, int, bytes]] = []
    for n in range(tickets):
        subject = f"T-{n:05d}"
        opened = START + span * rng.random()
        customer = customers[min(int(rng.expovariate(0.6)), len(customers) - 1)]
        life = _ticket(rng, policy, opened, customer)
        stamped += _stamp(subject, life)
    for n in range(maintenances):
        stamped += _stamp(f"M-{n:03d}", _in_order(_maintenance(rng, START + span * rng.random())))
    stamped.sort(key=lambda item: item[:3])
    return [line for *_, line in stamped]


def _stamp(subject: str, life: Life) -> list[tuple[datetime, str, int, bytes]]:
    out = []
    for n, (at, type_, data) in enumerate(life):
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": f"{subject}/{n}",
            "source": "report-history",
            "type": type_,
            "time": at.isoformat().replace("+00:00", "Z"),
            "subject": subject,
        }
        if data is not None:
            event["data"] = data
        out.append((at, subject, n, orjson.dumps(event)))
    return out


def _ticket(rng: random.Random, policy: Policy, opened: datetime, customer: str) -> Life:
    severity = rng.choices(_SEVERITIES, _WEIGHTS)[0]
    tier = rng.choice(_TIERS)
    data = {"customer_id": customer, "support_tier": tier, "severity": severity}
    life: Life = [(opened, "ticket.opened", data)]
    if severity in ("urgent", "high") and rng.random() < 0.7:
        acknowledged = opened + _MIN * rng.uniform(2, 25)  # some after a 15-minute window
        life.append((acknowledged, "ticket.escalation_acknowledged", {"step": 1}))
    target = policy.response_targets[(Severity(severity), Tier(tier))]
    if rng.random() < 0.04:  # never answered
        return _in_order(life)
    late = rng.random() < 0.15
    at = opened + target * (rng.uniform(1.05, 3.0) if late else rng.uniform(0.1, 0.95))
    life.append((at, "ticket.responded", {"agent_id": f"A-{rng.randrange(40)}"}))
    every = policy.update_frequency.get(Severity(severity), 12 * _HOUR)
    for _ in range(rng.randint(0, 4)):
        at += every * rng.uniform(0.5, 1.4)  # some windows pass without an update
        life.append((at, "ticket.updated", {"agent_id": f"A-{rng.randrange(40)}"}))
    if rng.random() < 0.08:
        at += _HOUR * rng.uniform(0.5, 4)
        life.append((at, "ticket.status_changed", {"status": "pending_customer"}))
        at += _HOUR * rng.uniform(1, 30)
        life.append((at, "ticket.status_changed", {"status": "in_progress"}))
    if rng.random() < 0.06:
        other = rng.choice([s for s in _SEVERITIES if s != severity])
        at += _HOUR * rng.uniform(0.2, 3)
        life.append((at, "ticket.severity_changed", {"severity": other}))
    if rng.random() < 0.04:  # still open at the end
        return _in_order(life)
    at += every * rng.uniform(0.2, 1.2)
    life.append((at, "ticket.resolved", None))
    if rng.random() < 0.05:
        at += _HOUR * rng.uniform(1, 12)
        life.append((at, "ticket.reopened", None))
        at += _HOUR * rng.uniform(0.5, 8)
        life.append((at, "ticket.responded", {}))
        at += _HOUR * rng.uniform(1, 12)
        life.append((at, "ticket.resolved", None))
    if rng.random() < 0.7:
        life.append((at + _HOUR * rng.uniform(1, 48), "ticket.closed", None))
    return _in_order(life)


def _in_order(life: Life) -> Life:
    """By time, to the second (an acknowledgement may come before or after the response)."""
    return sorted(((at.replace(microsecond=0), t, d) for at, t, d in life), key=lambda e: e[0])


def _maintenance(rng: random.Random, at: datetime) -> Life:
    emergency = rng.random() < 0.15
    lead = _HOUR * rng.uniform(2, 20) if emergency else _DAY * rng.uniform(1, 14)
    start = at + lead
    data = {
        "kind": "emergency" if emergency else "planned",
        "summary": "platform upgrade",
        "services": ["api"],
        "window_start": _rfc3339(start),
        "window_end": _rfc3339(start + 2 * _HOUR),
    }
    life: Life = [(at, "maintenance.scheduled", data)]
    if rng.random() < 0.2 and lead > _DAY:
        moved = at + (lead / 2)
        later = start + _DAY * rng.uniform(0.5, 6)
        window = {"window_start": _rfc3339(later), "window_end": _rfc3339(later + 2 * _HOUR)}
        life.append((moved, "maintenance.rescheduled", window))
    elif rng.random() < 0.1:
        life.append((at + lead / 3, "maintenance.cancelled", None))
    return life


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
