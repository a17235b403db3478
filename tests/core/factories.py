"""Shared helpers for the core tests: CloudEvent bytes through the real edge, and a subject driver."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from processor.sla import engine
from processor.sla.outputs import Output
from processor.sla.policy import Policy, load_policy
from schemas.cloudevents import InputEvent, parse_event
from schemas.outputs import data as output_data

SEC: Final = timedelta(seconds=1)
MIN: Final = timedelta(minutes=1)
H: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)

T0: Final = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, outside any DST change

DEFAULT_POLICY: Final = load_policy()

_DURATION: Final = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration without years or months (those have no fixed length)."""
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT", "-P") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration of fixed length: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
    span = timedelta(**parts)
    return -span if match["sign"] else span


def parse_time(text: str) -> datetime:
    """An RFC 3339 instant as an aware UTC datetime; refuses a naive one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"not an RFC 3339 instant (no offset): {text!r}")
    return moment.astimezone(UTC)


def envelope(
    type_: str,
    subject: str,
    at: datetime | str,
    data: Mapping[str, Any] | None = None,
    *,
    event_id: str = "evt-1",
    source: str = "ticketing",
) -> dict[str, Any]:
    """A structured-mode CloudEvent as a dict, ready for JSON."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": at if isinstance(at, str) else rfc3339(at),
        "subject": subject,
    }
    if data is not None:
        attributes["data"] = dict(data)
    return attributes


def to_bytes(attributes: Mapping[str, Any]) -> bytes:
    return json.dumps(attributes).encode()


def make_event(
    type_: str,
    subject: str,
    at: datetime,
    data: Mapping[str, Any] | None = None,
    *,
    event_id: str = "evt-1",
) -> InputEvent:
    """Build CloudEvent bytes and parse them through the real edge."""
    return parse_event(to_bytes(envelope(type_, subject, at, data, event_id=event_id)))


def opened_data(
    tier: str = "premium", severity: str | None = None, customer_id: str = "CUST-1", **more: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"customer_id": customer_id, "support_tier": tier}
    if severity is not None:
        data["severity"] = severity
    data.update(more)
    return data


# -- a driver for one subject: feeds events and clock advances to the engine -------------------


class Subject:
    """One ticket or maintenance run through the engine; records every output in order."""

    def __init__(self, subject: str = "TCK-1", policy: Policy = DEFAULT_POLICY) -> None:
        self.subject = subject
        self.policy = policy
        self.state: engine.State | None = None
        self.outputs: list[Output] = []
        self._sent = 0

    def send(
        self,
        type_: str,
        at: datetime,
        data: Mapping[str, Any] | None = None,
        *,
        event_id: str | None = None,
    ) -> engine.AnyDecision:
        if event_id is None:
            self._sent += 1
            event_id = f"{self.subject}/e{self._sent}"
        event = make_event(type_, self.subject, at, data, event_id=event_id)
        decision = engine.decide(self.state, event, self.policy)
        self.state = decision.state
        self.outputs.extend(decision.outputs)
        return decision

    def open(
        self, at: datetime, severity: str | None = None, tier: str = "premium", **data: Any
    ) -> engine.AnyDecision:
        return self.send("ticket.opened", at, opened_data(tier, severity, **data))

    def advance(self, now: datetime) -> engine.AnyDecision:
        assert self.state is not None, "the subject's state was forgotten"
        decision = engine.advance(self.state, now, self.policy)
        self.state = decision.state
        self.outputs.extend(decision.outputs)
        return decision


def of_type(outputs: Iterable[Output], type_: str) -> list[Output]:
    return [o for o in outputs if o.type == type_]


def escalation_keys(outputs: Iterable[Output]) -> list[tuple[str, int, datetime]]:
    """(severity, step, time) of each escalation, in order."""
    return [
        (output_data(o)["severity"], output_data(o)["step"], o.time)
        for o in of_type(outputs, "sla.escalation")
    ]


def update_keys(outputs: Iterable[Output]) -> list[tuple[int, datetime]]:
    """(cycle, due_at) of each sla.update_due, in order."""
    return [
        (output_data(o)["cycle"], parse_time(output_data(o)["due_at"]))
        for o in of_type(outputs, "sla.update_due")
    ]


def breach_times(outputs: Iterable[Output]) -> list[datetime]:
    return [parse_time(output_data(o)["due_at"]) for o in of_type(outputs, "sla.breach")]


def assert_data_includes(output: Output, expected: Mapping[str, Any]) -> None:
    """The contract lists the fields `data` carries at least; each must have the expected value."""
    data = output_data(output)
    json.dumps(data)  # JSON-ready
    missing = set(expected) - set(data)
    assert not missing, f"{output.type} data lacks {sorted(missing)}"
    for key, value in expected.items():
        actual = data[key]
        if isinstance(value, datetime):
            actual = parse_time(actual)
        elif isinstance(value, timedelta):
            actual = parse_duration(actual)
        assert actual == value, f"{output.type} data[{key!r}] = {data[key]!r}, expected {value!r}"
