"""The CloudEvents HTTP protocol binding (1.0.2): an HTTP request as the events it carries.

Structured mode (`application/cloudevents+json`, the body is the event), binary mode (the
attributes in `ce-` headers, percent-encoded; the body is the data, Content-Type its media type)
and batched mode (`application/cloudevents-batch+json`, a JSON array of structured events). Every
event is validated by the stream's own parser (`schemas.cloudevents`): what the ingest accepts,
a worker accepts as a well-formed event. A request is accepted whole or refused whole.

Errors:
    Refused(status, reason, message)  -- reason is bounded (metric labels), message names no value
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

import orjson

from schemas.cloudevents import (
    MAX_EVENT_BYTES,
    STRUCTURED,
    InputEvent,
    InvalidEvent,
    check_i_json,
    parse_event,
    structured,
)

BATCH: Final = "application/cloudevents-batch+json"
# What is published: the structured event and this header. A worker counts a record's headers
# in its size limit (parse_record), so the ingest keeps the event within what a worker takes.
HEADERS: Final = (("content-type", STRUCTURED.encode()),)
EVENT_LIMIT: Final = MAX_EVENT_BYTES - sum(len(name) + len(value) for name, value in HEADERS)
_PREFIX: Final = "ce-"
# HTTP statuses of the parser's reasons: too large and not JSON are told apart from a bad event.
_STATUS: Final = {"too_large": 413, "unsupported_content_type": 415}


class Refused(ValueError):
    """The request is refused: nothing of it is published."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event and the structured-mode bytes published for it."""

    event: InputEvent
    raw: bytes


def refused(exc: InvalidEvent, where: str = "") -> Refused:
    return Refused(_STATUS.get(exc.reason, 400), exc.reason, f"{where}{exc.args[0]}")


def events(
    content_type: str | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_batch: int,
    max_event_bytes: int = EVENT_LIMIT,
) -> list[Accepted]:
    """The events of one request, in order; Refused when any of them is not acceptable."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if media == STRUCTURED:
            return [accepted(body, max_event_bytes)]
        if media == BATCH:
            return _batch(body, max_batch, max_event_bytes)
        attributes = _attributes(headers)
        if "specversion" not in attributes:
            raise InvalidEvent(
                "unsupported_content_type",
                f"Content-Type is neither {STRUCTURED} (structured mode) nor {BATCH} (batched "
                "mode), and there is no ce-specversion header (binary mode)",
            )
        if "datacontenttype" in attributes:
            raise InvalidEvent(
                "invalid_envelope", "binary mode: the data's media type is the Content-Type"
            )
        # Measured as published: the structured form (escapes included), not the headers.
        return [accepted(structured(body or None, attributes, content_type), max_event_bytes)]
    except InvalidEvent as exc:
        raise refused(exc) from None


def accepted(raw: bytes, max_event_bytes: int = EVENT_LIMIT) -> Accepted:
    """A structured event as published; InvalidEvent (too_large beyond the limit) otherwise."""
    return Accepted(parse_event(raw, max_event_bytes), raw)


def _batch(body: bytes, max_batch: int, max_event_bytes: int) -> list[Accepted]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("malformed_json", f"not valid JSON: {exc.msg}") from None
    if not isinstance(items, list):
        raise InvalidEvent("not_an_object", "a batch must be a JSON array of CloudEvents")
    if len(items) > max_batch:
        raise Refused(413, "too_many_events", f"{len(items)} events in a batch, the limit is "
                      f"{max_batch} (SLA_INGEST_MAX_BATCH_EVENTS)")  # fmt: skip
    check_i_json(body)  # the duplicate names and NaN a re-serialised member would hide
    found = []
    for index, item in enumerate(items):
        try:  # re-serialised: the values as parsed (a number's spelling may change)
            found.append(accepted(orjson.dumps(item), max_event_bytes))
        except InvalidEvent as exc:
            raise refused(exc, f"event {index}: ") from None
    return found


def _attributes(headers: Mapping[str, str]) -> dict[str, str]:
    """The `ce-` headers as attributes, percent-decoded (the binding encodes space, '"', '%' and
    anything beyond printable ASCII)."""
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith(_PREFIX):
            continue
        try:
            decoded = unquote_to_bytes(value.encode("utf-8", "surrogateescape")).decode()
        except UnicodeError:
            raise InvalidEvent("invalid_envelope", f"header {name} is not UTF-8") from None
        if lower[3:] in attributes:
            raise InvalidEvent("invalid_envelope", f"header {name} given twice")
        attributes[lower[3:]] = decoded
    return attributes
