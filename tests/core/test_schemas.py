"""The input edge: CloudEvent bytes in, typed events or a bounded rejection reason out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.cloudevents import (
    MAX_EVENT_BYTES,
    REASONS,
    Impact,
    InvalidEvent,
    Severity,
    Tier,
    parse_event,
    parse_record,
)

from .factories import T0, envelope, to_bytes

WINDOW = {"window_start": "2026-03-20T22:00:00Z", "window_end": "2026-03-21T02:00:00Z"}
VALID: list[tuple[str, dict[str, Any] | None]] = [
    (
        "ticket.opened",
        {
            "customer_id": "CUST-1",
            "support_tier": "premium",
            "severity": "urgent",
            "impact": "service_down",
            "problem_type": "connectivity",
            "workaround_available": False,
        },
    ),
    ("ticket.opened", {"customer_id": "CUST-1", "support_tier": "basic", "impact": "minor"}),
    ("ticket.severity_changed", {"severity": "high"}),
    ("ticket.responded", {"agent_id": "A-1"}),
    ("ticket.responded", None),
    ("ticket.responded", {}),
    ("ticket.updated", {"agent_id": "A-1"}),
    ("ticket.updated", None),
    ("ticket.status_changed", {"status": "pending_customer"}),
    ("ticket.resolved", None),
    ("ticket.resolved", {}),
    ("ticket.closed", None),
    ("ticket.reopened", None),
    ("ticket.escalation_acknowledged", {"step": 1}),
    ("ticket.escalation_acknowledged", {"step": 2, "role": "support_manager", "agent_id": "A-1"}),
    (
        "maintenance.scheduled",
        {
            "kind": "planned",
            **WINDOW,
            "summary": "core upgrade",
            "services": ["apn", "api"],
            "customers": ["CUST-1"],
        },
    ),
    ("maintenance.scheduled", {"kind": "emergency", **WINDOW, "summary": "hotfix"}),
    ("maintenance.rescheduled", WINDOW),
    ("maintenance.cancelled", None),
]
TYPES = sorted({t for t, _ in VALID})


def _valid_id(type_: str, data: dict[str, Any] | None) -> str:
    return f"{type_}-{'none' if data is None else len(data)}"


@pytest.mark.parametrize(("type_", "data"), VALID, ids=[_valid_id(*v) for v in VALID])
def test_accepts_each_contract_type(type_: str, data: dict[str, Any] | None) -> None:
    event = parse_event(to_bytes(envelope(type_, "SUBJ-1", T0, data, event_id="e-1")))
    assert event.type == type_
    assert event.id == "e-1"
    assert event.subject == "SUBJ-1"
    assert event.source == "ticketing"
    assert event.time == T0
    assert event.time.utcoffset() is not None
    assert event.time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_all_contract_types_are_covered() -> None:
    assert (
        sorted(
            [
                "ticket.opened",
                "ticket.severity_changed",
                "ticket.responded",
                "ticket.updated",
                "ticket.status_changed",
                "ticket.resolved",
                "ticket.closed",
                "ticket.reopened",
                "ticket.escalation_acknowledged",
                "maintenance.scheduled",
                "maintenance.rescheduled",
                "maintenance.cancelled",
            ]
        )
        == TYPES
    )


def test_opened_data_is_typed() -> None:
    type_, fields = VALID[0]
    event = parse_event(to_bytes(envelope(type_, "TCK-1", T0, fields, event_id="e")))
    assert event.type == "ticket.opened"
    data = event.data
    assert data.customer_id == "CUST-1"  # type: ignore[union-attr]
    assert data.support_tier is Tier.PREMIUM  # type: ignore[union-attr]
    assert data.severity is Severity.URGENT  # type: ignore[union-attr]
    assert data.impact is Impact.SERVICE_DOWN  # type: ignore[union-attr]
    assert data.problem_type == "connectivity"  # type: ignore[union-attr]
    assert data.workaround_available is False  # type: ignore[union-attr]


def test_window_times_are_utc_instants() -> None:
    data = {
        "kind": "planned",
        "window_start": "2026-03-20T23:00:00+01:00",
        "window_end": "2026-03-21T03:00:00+01:00",
        "summary": "s",
    }
    event = parse_event(to_bytes(envelope("maintenance.scheduled", "M", T0, data)))
    assert event.data.window_start == datetime(2026, 3, 20, 22, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert event.data.window_end == datetime(2026, 3, 21, 2, 0, tzinfo=UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    ["2026-03-02T09:00:00Z", "2026-03-02T10:00:00+01:00", "2026-03-02T04:00:00-05:00"],
)
def test_time_with_any_offset_is_the_same_instant(text: str) -> None:
    event = parse_event(to_bytes(envelope("ticket.resolved", "T", text)))
    assert event.time == T0


def test_unknown_attributes_and_fields_are_tolerated() -> None:
    # The contract may grow new fields: extension attributes and extra data fields are accepted.
    attributes = envelope(
        "ticket.opened",
        "TCK-1",
        T0,
        {"customer_id": "C", "support_tier": "select", "severity": "low", "channel": "email"},
    )
    attributes |= {"datacontenttype": "application/json", "traceparent": "00-abc-def-01"}
    event = parse_event(to_bytes(attributes))
    assert event.type == "ticket.opened"
    assert event.data.support_tier is Tier.SELECT  # type: ignore[union-attr]


# -- rejections --------------------------------------------------------------------------------


def _opened(**data: Any) -> dict[str, Any]:
    return envelope(
        "ticket.opened", "TCK-1", T0, {"customer_id": "CUST-1", "support_tier": "basic", **data}
    )


def _without(key: str) -> bytes:
    attributes = envelope("ticket.responded", "TCK-1", T0)
    del attributes[key]
    return to_bytes(attributes)


def _with(**attributes: Any) -> bytes:
    return to_bytes(envelope("ticket.responded", "TCK-1", T0) | attributes)


def _data(type_: str, data: dict[str, Any]) -> bytes:
    return to_bytes(envelope(type_, "SUBJ", T0, data))


REJECTED: list[tuple[str, bytes, str]] = [
    ("too-large", _with(id="x" * 10) + b" " * MAX_EVENT_BYTES, "too_large"),
    (
        "too-large-data",
        to_bytes(_opened(problem_type="p", padding="x" * (MAX_EVENT_BYTES + 1))),
        "too_large",
    ),
    ("truncated-json", _with()[:-5], "malformed_json"),
    ("not-json", b"ticket opened", "malformed_json"),
    ("empty", b"", "malformed_json"),
    ("whitespace", b"   \n", "malformed_json"),
    ("invalid-utf8", _with(id="e-1").replace(b"e-1", b"e-\xff"), "malformed_json"),
    ("utf8-bom-garbage", b"\xff\xfe{}", "malformed_json"),
    ("array", b"[]", "not_an_object"),
    ("string", b'"ticket.opened"', "not_an_object"),
    ("number", b"42", "not_an_object"),
    ("null", b"null", "not_an_object"),
    ("unknown-type", _with(type="ticket.deleted"), "unknown_type"),
    ("output-type-as-input", _with(type="sla.breach"), "unknown_type"),
    ("missing-type", _without("type"), "unknown_type"),
    ("null-type", _with(type=None), "unknown_type"),
    ("missing-id", _without("id"), "invalid_envelope"),
    ("empty-id", _with(id=""), "invalid_envelope"),
    ("missing-subject", _without("subject"), "invalid_envelope"),
    ("empty-subject", _with(subject=""), "invalid_envelope"),
    ("missing-time", _without("time"), "invalid_envelope"),
    ("naive-time", _with(time="2026-03-02T09:00:00"), "invalid_envelope"),
    ("date-only-time", _with(time="2026-03-02"), "invalid_envelope"),
    ("garbage-time", _with(time="yesterday"), "invalid_envelope"),
    ("numeric-time", _with(time=1772442000), "invalid_envelope"),
    ("missing-specversion", _without("specversion"), "invalid_envelope"),
    ("wrong-specversion", _with(specversion="0.3"), "invalid_envelope"),
    ("numeric-specversion", _with(specversion=1.0), "invalid_envelope"),
    ("missing-source", _without("source"), "invalid_envelope"),
    ("numeric-id", _with(id=17), "invalid_envelope"),
    ("missing-opened-data", to_bytes(envelope("ticket.opened", "T", T0)), "invalid_data"),
    ("data-string", to_bytes(_opened() | {"data": "urgent"}), "invalid_data"),
    ("data-null", to_bytes(_opened() | {"data": None}), "invalid_data"),
    (
        "data-array",
        to_bytes(envelope("maintenance.rescheduled", "M", T0) | {"data": []}),
        "invalid_data",
    ),
    ("missing-customer", _data("ticket.opened", {"support_tier": "basic"}), "invalid_data"),
    ("missing-tier", _data("ticket.opened", {"customer_id": "C"}), "invalid_data"),
    ("string-for-bool", to_bytes(_opened(workaround_available="true")), "invalid_data"),
    ("number-for-bool", to_bytes(_opened(workaround_available=1)), "invalid_data"),
    (
        "number-for-customer",
        _data("ticket.opened", {"customer_id": 12345, "support_tier": "basic"}),
        "invalid_data",
    ),
    (
        "unknown-tier",
        _data("ticket.opened", {"customer_id": "C", "support_tier": "gold"}),
        "invalid_data",
    ),
    ("unknown-severity", to_bytes(_opened(severity="critical")), "invalid_data"),
    ("unknown-impact", to_bytes(_opened(impact="total")), "invalid_data"),
    ("uppercase-severity", to_bytes(_opened(severity="URGENT")), "invalid_data"),
    (
        "severity-changed-unknown",
        _data("ticket.severity_changed", {"severity": "p1"}),
        "invalid_data",
    ),
    ("severity-changed-missing", _data("ticket.severity_changed", {}), "invalid_data"),
    ("status-missing", _data("ticket.status_changed", {}), "invalid_data"),
    ("status-number", _data("ticket.status_changed", {"status": 3}), "invalid_data"),
    ("agent-number", _data("ticket.responded", {"agent_id": 7}), "invalid_data"),
    (
        "ack-missing-data",
        to_bytes(envelope("ticket.escalation_acknowledged", "T", T0)),
        "invalid_data",
    ),
    (
        "ack-missing-step",
        _data("ticket.escalation_acknowledged", {"role": "tier1"}),
        "invalid_data",
    ),
    ("ack-step-string", _data("ticket.escalation_acknowledged", {"step": "2"}), "invalid_data"),
    ("ack-step-float", _data("ticket.escalation_acknowledged", {"step": 1.5}), "invalid_data"),
    ("ack-step-bool", _data("ticket.escalation_acknowledged", {"step": True}), "invalid_data"),
    ("ack-step-zero", _data("ticket.escalation_acknowledged", {"step": 0}), "invalid_data"),
    ("ack-step-huge", _data("ticket.escalation_acknowledged", {"step": 10**30}), "invalid_data"),
    (
        "ack-unknown-role",
        _data("ticket.escalation_acknowledged", {"step": 1, "role": "ceo"}),
        "invalid_data",
    ),
    (
        "ack-on-maintenance-shape",
        _data("ticket.escalation_acknowledged", {"step": [1]}),
        "invalid_data",
    ),
    (
        "unknown-kind",
        _data("maintenance.scheduled", {"kind": "routine", **WINDOW, "summary": "s"}),
        "invalid_data",
    ),
    (
        "window-end-before-start",
        _data(
            "maintenance.scheduled",
            {
                "kind": "planned",
                "window_start": WINDOW["window_end"],
                "window_end": WINDOW["window_start"],
                "summary": "s",
            },
        ),
        "invalid_data",
    ),
    (
        "rescheduled-window-end-before-start",
        _data(
            "maintenance.rescheduled",
            {"window_start": WINDOW["window_end"], "window_end": WINDOW["window_start"]},
        ),
        "invalid_data",
    ),
    (
        "naive-window",
        _data(
            "maintenance.rescheduled",
            {"window_start": "2026-03-20T22:00:00", "window_end": "2026-03-21T02:00:00"},
        ),
        "invalid_data",
    ),
    ("rescheduled-missing-window", _data("maintenance.rescheduled", {}), "invalid_data"),
    (
        "scheduled-missing-kind",
        _data("maintenance.scheduled", {**WINDOW, "summary": "s"}),
        "invalid_data",
    ),
]


@pytest.mark.parametrize(("raw", "reason"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_rejects_with_the_right_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert info.value.reason == reason
    assert info.value.reason in REASONS
    assert isinstance(info.value, ValueError)


def test_window_end_equal_to_start_is_rejected() -> None:
    data = {"window_start": WINDOW["window_start"], "window_end": WINDOW["window_start"]}
    with pytest.raises(InvalidEvent) as info:
        parse_event(_data("maintenance.rescheduled", data))
    assert info.value.reason == "invalid_data"


def test_size_limit_is_inclusive() -> None:
    raw = _with()
    padded = raw[:-1] + b" " * (MAX_EVENT_BYTES - len(raw)) + b"}"
    assert len(padded) == MAX_EVENT_BYTES
    assert parse_event(padded).type == "ticket.responded"
    with pytest.raises(InvalidEvent) as info:
        parse_event(padded + b" ")
    assert info.value.reason == "too_large"


# -- error messages never echo payload values --------------------------------------------------

SECRET = "sk_live_9f8e7d6c5b4a"


SECRET_CASES: list[tuple[str, bytes]] = [
    (
        "secret-customer-bad-tier",
        _data("ticket.opened", {"customer_id": SECRET, "support_tier": "gold"}),
    ),
    (
        "secret-customer-and-tier",
        _data("ticket.opened", {"customer_id": SECRET, "support_tier": SECRET}),
    ),
    (
        "secret-customer-too-long",
        _data("ticket.opened", {"customer_id": SECRET * 30, "support_tier": "basic"}),
    ),
    (
        "secret-customer-bad-bool",
        to_bytes(_opened(customer_id=SECRET, workaround_available="yes")),
    ),
    ("secret-as-bool", to_bytes(_opened(workaround_available=SECRET))),
    ("secret-severity", to_bytes(_opened(severity=SECRET))),
    ("secret-type", _with(type=SECRET)),
    ("secret-time", _with(time=SECRET)),
    ("secret-specversion", _with(specversion=SECRET)),
    ("secret-status", _data("ticket.status_changed", {"status": SECRET * 5})),
    ("secret-in-broken-json", b'{"id": "' + SECRET.encode() + b'", "x": }'),
    ("secret-in-truncated-json", _with(id=SECRET)[:-3]),
    ("secret-in-bad-utf8", _with(id=SECRET + "\u00e9").replace(b"\\u00e9", b"\xe9")),
    ("secret-as-array", json.dumps([SECRET]).encode()),
    ("secret-as-string", json.dumps(SECRET).encode()),
    (
        "secret-window",
        _data("maintenance.rescheduled", {"window_start": SECRET, "window_end": SECRET}),
    ),
]


@pytest.mark.parametrize("raw", [c[1] for c in SECRET_CASES], ids=[c[0] for c in SECRET_CASES])
def test_error_message_never_contains_payload_values(raw: bytes) -> None:
    assert SECRET.encode() in raw
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    rendered = " ".join([str(info.value), repr(info.value), *map(str, info.value.args)])
    assert SECRET[:8] not in rendered


def test_valid_event_with_secret_customer_is_accepted() -> None:
    event = parse_event(to_bytes(_opened(customer_id=SECRET)))
    assert event.data.customer_id == SECRET  # type: ignore[union-attr]


# -- I-JSON (RFC 7493) and control characters ------------------------------------------------

STRICT_REJECTED: list[tuple[str, bytes, str, str]] = [
    ("duplicate-subject", _with()[:-1] + b',"subject":"T-2"}', "malformed_json",
     "duplicate member name 'subject'"),
    ("duplicate-data", _data("ticket.status_changed", {"status": "open"})[:-1]
     + b',"data":{"status":"closed"}}', "malformed_json", "duplicate member name 'data'"),
    ("duplicate-in-data", to_bytes(_opened(severity="high")).replace(b'"severity"', b'"severity":"low","severity"'),
     "malformed_json", "duplicate member name 'severity'"),
    ("duplicate-unknown-name", _with()[:-1] + b',"x":{"' + SECRET.encode() + b'":1,"'
     + SECRET.encode() + b'":2}}', "malformed_json", "a duplicate member name"),
    ("nan", _with()[:-1] + b',"x":NaN}', "malformed_json", "NaN is not a JSON number"),
    ("infinity", _with()[:-1] + b',"x":[Infinity]}', "malformed_json", "Infinity is not"),
    ("minus-infinity", _with()[:-1] + b',"x":-Infinity}', "malformed_json", "-Infinity is not"),
    ("nul-in-subject", _with(subject="T\u00001"), "invalid_envelope", "subject: a control"),
    ("newline-in-id", _with(id="e\n1"), "invalid_envelope", "id: a control"),
    ("del-in-source", _with(source="s\u007f"), "invalid_envelope", "source: a control"),
    ("c1-in-subject", _with(subject="T\u0085"), "invalid_envelope", "subject: a control"),
    ("line-separator-in-subject", _with(subject="T\u2028X"), "invalid_envelope", "subject: a"),
    ("tab-in-customer", to_bytes(_opened(customer_id="c\t1")), "invalid_data",
     "data.customer_id: a control"),
    ("nul-in-summary", _data("maintenance.scheduled", {"kind": "planned", **WINDOW,
                                                       "summary": "a\u0000b"}),
     "invalid_data", "data.summary: a control"),
    ("escape-in-status", _data("ticket.status_changed", {"status": "\u001b[31m"}),
     "invalid_data", "data.status: a control"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "reason", "message"),
    [r[1:] for r in STRICT_REJECTED],
    ids=[r[0] for r in STRICT_REJECTED],
)
def test_rejects_what_means_two_things_to_two_consumers(
    raw: bytes, reason: str, message: str
) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert (info.value.reason, SECRET[:8] in str(info.value)) == (reason, False)
    assert message in str(info.value)


def test_free_text_keeps_line_breaks_and_ids_keep_any_letter() -> None:
    data = {"kind": "planned", **WINDOW, "summary": "line one\n\tline two\r\n"}
    assert parse_event(_data("maintenance.scheduled", data)).data.summary == data["summary"]
    assert parse_event(_with(subject="T-ÉTÉ-東京-1")).subject == "T-ÉTÉ-東京-1"


# -- the Kafka protocol binding: structured and binary mode -----------------------------------

ATTRIBUTES = [("ce_specversion", b"1.0"), ("ce_id", b"e-1"), ("ce_source", b"crm"),
              ("ce_type", b"ticket.opened"), ("ce_time", b"2026-12-01T10:00:00Z"),
              ("ce_subject", b"T-1")]  # fmt: skip
OPENED_DATA = b'{"customer_id":"c","support_tier":"premium","severity":"urgent"}'


def _attributes(**changes: bytes) -> list[tuple[str, bytes]]:
    return [(name, changes.get(name[3:], value)) for name, value in ATTRIBUTES]


def test_binary_mode_is_the_same_event_as_structured_mode() -> None:
    binary = parse_record(OPENED_DATA, [*ATTRIBUTES, ("content-type", b"application/json")])
    structured = parse_event(
        b'{"specversion":"1.0","id":"e-1","source":"crm","type":"ticket.opened",'
        b'"time":"2026-12-01T10:00:00Z","subject":"T-1","data":' + OPENED_DATA + b"}"
    )
    assert binary == structured
    # No content type: JSON data assumed; a +json type is JSON too; header names in any case.
    assert parse_record(OPENED_DATA, ATTRIBUTES) == structured
    upper = [(name.upper(), value) for name, value in ATTRIBUTES]
    assert parse_record(OPENED_DATA, [*upper, ("Content-Type", b"application/vnd.x+json")]) == (
        structured
    )


@pytest.mark.parametrize("value", [None, b""])
def test_binary_mode_without_data(value: bytes | None) -> None:
    event = parse_record(value, _attributes(type=b"ticket.resolved"))
    assert (event.type, event.data) == ("ticket.resolved", None)


@pytest.mark.parametrize(
    "content_type",
    [None, b"application/cloudevents+json", b"application/cloudevents+json; charset=utf-8",
     b"Application/CloudEvents+JSON"],
)  # fmt: skip
def test_structured_mode_with_or_without_its_content_type(content_type: bytes | None) -> None:
    headers = [] if content_type is None else [("content-type", content_type)]
    assert parse_record(_with(), headers).type == "ticket.responded"


BINDING_REJECTED: list[tuple[str, bytes | None, list[tuple[str, bytes | None]], str, str]] = [
    ("json-content-type-structured", _with(), [("content-type", b"application/json")],
     "unsupported_content_type", "'application/json' is neither"),
    ("text-plain", _with(), [("content-type", b"text/plain; charset=utf-8")],
     "unsupported_content_type", "'text/plain'"),
    ("not-a-media-type", _with(), [("content-type", SECRET.encode())],
     "unsupported_content_type", "(not a media type)"),
    ("binary-xml-data", b"<x/>", [*ATTRIBUTES, ("content-type", b"application/xml")],
     "unsupported_content_type", "JSON is required"),
    ("binary-data-not-json", b"{oops", ATTRIBUTES, "malformed_json", "data is not valid JSON"),
    ("binary-data-escaping-the-envelope", OPENED_DATA + b', "subject": "T-2"', ATTRIBUTES,
     "malformed_json", "data is not valid JSON"),
    ("binary-attribute-twice", OPENED_DATA, [*ATTRIBUTES, ("ce_subject", b"T-2")],
     "invalid_envelope", "header ce_subject given twice"),
    ("binary-data-header", OPENED_DATA, [*ATTRIBUTES, ("ce_data", b"{}")], "malformed_json",
     "duplicate member name 'data'"),
    ("binary-header-not-utf8", OPENED_DATA, _attributes(subject=b"\xff"), "invalid_envelope",
     "header ce_subject is not UTF-8"),
    ("binary-missing-type", OPENED_DATA, [a for a in ATTRIBUTES if a[0] != "ce_type"],
     "unknown_type", "missing or unknown event type"),
    ("binary-bad-time", OPENED_DATA, _attributes(time=b"yesterday"), "invalid_envelope", "time"),
    ("binary-null-header", OPENED_DATA, [*ATTRIBUTES[:-1], ("ce_subject", None)],
     "invalid_envelope", "subject"),
    ("binary-too-large", b'{"x":"' + b"a" * MAX_EVENT_BYTES + b'"}', ATTRIBUTES, "too_large",
     "the limit is"),
    ("tombstone", None, [], "malformed_json", "a null value (tombstone) is not an event"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "headers", "reason", "message"),
    [r[1:] for r in BINDING_REJECTED],
    ids=[r[0] for r in BINDING_REJECTED],
)
def test_binding_rejections(
    value: bytes | None, headers: list[tuple[str, bytes | None]], reason: str, message: str
) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_record(value, headers)
    assert info.value.reason == reason
    assert message in str(info.value)
    assert SECRET[:8] not in str(info.value)


def test_the_records_headers_count_toward_the_size_limit() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_record(_with(), [("x-trace", b"t" * MAX_EVENT_BYTES)])
    assert info.value.reason == "too_large"


def test_a_structured_content_type_wins_over_stray_ce_headers() -> None:
    """A bridge may leave ce_* headers on a structured event: its content type says the mode."""
    headers = [*ATTRIBUTES, ("content-type", b"application/cloudevents+json")]
    assert parse_record(_with(), headers).type == "ticket.responded"
