"""The CloudEvents HTTP binding: structured, binary and batched requests as events, or refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from processor.ingest.binding import BATCH, Refused, events
from schemas.cloudevents import STRUCTURED

OPENED: dict[str, Any] = {
    "specversion": "1.0", "id": "e-1", "source": "desk", "type": "ticket.opened",
    "time": "2026-12-01T09:00:00Z", "subject": "T-1",
    "data": {"customer_id": "C-1", "support_tier": "premium", "severity": "high"},
}  # fmt: skip


def _binary_headers(**extra: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": "e-2", "ce-source": "desk",
            "ce-type": "ticket.responded", "ce-time": "2026-12-01T09:05:00Z",
            "ce-subject": "T-1", **extra}  # fmt: skip


def test_structured_mode_publishes_the_bytes_received() -> None:
    raw = orjson.dumps(OPENED)
    [accepted] = events(f"{STRUCTURED}; charset=utf-8", {}, raw, max_batch=10)
    assert accepted.raw == raw
    assert (accepted.event.type, accepted.event.subject) == ("ticket.opened", "T-1")


def test_binary_mode_builds_the_structured_event_with_percent_decoded_attributes() -> None:
    headers = _binary_headers(**{"ce-subject": "T%201%E2%82%AC"})
    [accepted] = events("application/json", headers, b'{"agent_id": "A-7"}', max_batch=10)
    assert accepted.event.subject == "T 1€"
    assert orjson.loads(accepted.raw)["data"] == {"agent_id": "A-7"}
    assert orjson.loads(accepted.raw)["type"] == "ticket.responded"


def test_binary_mode_without_data() -> None:
    [accepted] = events(None, _binary_headers(), b"", max_batch=10)
    assert accepted.event.type == "ticket.responded"


def test_batched_mode_keeps_the_order() -> None:
    second = {**OPENED, "id": "e-9", "type": "ticket.resolved", "time": "2026-12-01T10:00:00Z"}
    del second["data"]
    found = events(BATCH, {}, orjson.dumps([OPENED, second]), max_batch=10)
    assert [a.event.id for a in found] == ["e-1", "e-9"]
    assert events(BATCH, {}, b"[]", max_batch=10) == []


@pytest.mark.parametrize(
    ("content_type", "headers", "body", "status", "reason"),
    [
        (STRUCTURED, {}, b"{not json", 400, "malformed_json"),
        (STRUCTURED, {}, b"[1]", 400, "not_an_object"),
        (STRUCTURED, {}, orjson.dumps({**OPENED, "type": "ticket.lost"}), 400, "unknown_type"),
        (STRUCTURED, {}, orjson.dumps({**OPENED, "data": {"customer_id": "C"}}), 400,
         "invalid_data"),
        (STRUCTURED, {}, orjson.dumps(OPENED)[:-1] + b',"id":"again"}', 400, "malformed_json"),
        (STRUCTURED, {}, b'{"a":' + b" " * 70_000 + b"1}", 413, "too_large"),
        ("text/plain", {}, b"hello", 415, "unsupported_content_type"),
        (None, {}, orjson.dumps(OPENED), 415, "unsupported_content_type"),
        ("text/plain", _binary_headers(), b"x", 415, "unsupported_content_type"),
        ("application/json", _binary_headers(), b"{", 400, "malformed_json"),
        ("application/json", _binary_headers(**{"ce-datacontenttype": "application/json"}),
         b"{}", 400, "invalid_envelope"),
        ("application/json", _binary_headers(**{"ce-subject": "%FF"}), b"{}", 400,
         "invalid_envelope"),
        ("application/json", _binary_headers(**{"ce-time": "yesterday"}), b"{}", 400,
         "invalid_envelope"),
        (BATCH, {}, orjson.dumps(OPENED), 400, "not_an_object"),
        (BATCH, {}, b"[" + orjson.dumps(OPENED) + b",{]", 400, "malformed_json"),
        (BATCH, {}, orjson.dumps([OPENED, {**OPENED, "specversion": "0.3"}]), 400,
         "invalid_envelope"),
        (BATCH, {}, b'[{"a": NaN}]', 400, "malformed_json"),
        (BATCH, {}, orjson.dumps([OPENED] * 11), 413, "too_many_events"),
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_whole(
    content_type: str | None, headers: dict[str, str], body: bytes, status: int, reason: str
) -> None:
    with pytest.raises(Refused) as refused:
        events(content_type, headers, body, max_batch=10)
    assert (refused.value.status, refused.value.reason) == (status, reason)


def test_a_refusal_names_the_event_of_a_batch_and_never_a_value() -> None:
    secret = {**OPENED, "id": "e-2", "data": {"customer_id": "ACME-SECRET", "support_tier": "gold"}}
    with pytest.raises(Refused) as refused:
        events(BATCH, {}, orjson.dumps([OPENED, secret]), max_batch=10)
    assert str(refused.value).startswith("event 1: data.support_tier")
    assert "ACME-SECRET" not in str(refused.value)
    assert "gold" not in str(refused.value)
