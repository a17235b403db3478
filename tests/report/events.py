"""Hand-built CloudEvent lines for the report's tests, and the replay that turns them into figures."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from processor.attainment.compute import of_replay
from processor.attainment.values import Attainment
from processor.replay import read_arrivals, read_events, replay, replay_arrivals
from processor.sla.policy import Policy, load_policy

# A Monday: 2026-03-02 is the first day of ISO week 2026-W10.
T0: Final = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN: Final = timedelta(minutes=1)
H: Final = timedelta(hours=1)
D: Final = timedelta(days=1)
ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT: Final = load_policy()
EXTENDED: Final = load_policy(ROOT / "examples/policies/extended.toml")


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Lines:
    """Events of several subjects, each with ids `<subject>/<n>`."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._sent: dict[str, int] = {}

    def add(
        self, type_: str, subject: str, at: datetime, data: Mapping[str, Any] | None = None
    ) -> bytes:
        n = self._sent[subject] = self._sent.get(subject, 0) + 1
        event: dict[str, Any] = {
            "specversion": "1.0", "id": f"{subject}/{n}", "source": "test", "type": type_,
            "time": rfc3339(at), "subject": subject,
        }  # fmt: skip
        if data is not None:
            event["data"] = dict(data)
        line = orjson.dumps(event)
        self.lines.append(line)
        return line

    def open(
        self, subject: str, at: datetime, severity: str, tier: str, customer: str = "ACME"
    ) -> None:
        data = {"customer_id": customer, "support_tier": tier, "severity": severity}
        self.add("ticket.opened", subject, at, data)

    def schedule(self, subject: str, at: datetime, start: datetime, kind: str = "planned") -> None:
        data = {"kind": kind, "summary": "upgrade", "window_start": rfc3339(start),
                "window_end": rfc3339(start + 2 * H)}  # fmt: skip
        self.add("maintenance.scheduled", subject, at, data)

    def in_time_order(self) -> list[bytes]:
        return sorted(self.lines, key=lambda line: orjson.loads(line)["time"])


def figures(
    lines: Iterable[bytes], until: datetime, policy: Policy = DEFAULT, top: int = 20
) -> Attainment:
    errors = io.StringIO()
    result = replay(read_events(lines, errors), policy, until, errors)
    assert not errors.getvalue(), errors.getvalue()
    return of_replay(result, top)


def arrival_figures(lines: Iterable[bytes], until: datetime, policy: Policy) -> Attainment:
    errors = io.StringIO()
    result = replay_arrivals(read_arrivals(lines, errors), policy, until, errors)
    assert not errors.getvalue(), errors.getvalue()
    return of_replay(result)


def arrived(at: datetime, line: bytes) -> bytes:
    return orjson.dumps({"arrived_at": rfc3339(at), "event": orjson.loads(line)})
