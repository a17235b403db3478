"""CloudEvents 1.0 input models, parsed once from bytes with a module-level TypeAdapter.

Errors:
    InvalidEvent(reason, message)   -- reason is one of REASONS, a bounded set fit for metric labels
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)
from pydantic import ValidationError as _ValidationError

# The core's vocabulary, re-exported for the models' users.
from processor.sla.policy import Role as Role
from processor.sla.vocabulary import Impact as Impact
from processor.sla.vocabulary import Severity as Severity
from processor.sla.vocabulary import Tier as Tier

MAX_EVENT_BYTES: Final = 64 * 1024
REASONS: Final = frozenset(
    {
        "too_large",
        "unsupported_content_type",
        "malformed_json",
        "not_an_object",
        "unknown_type",
        "invalid_envelope",
        "invalid_data",
    }
)


class InvalidEvent(ValueError):
    """The bytes are not an acceptable CloudEvent; `reason` is a bounded code, `args[0]` the detail."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# Deadlines and retention are added to event times: far-off years would overflow datetime.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)


def _to_utc(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("instant out of range (1970 to 9000)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# Identifiers and short texts carry no control characters (C0, DEL, C1) nor line separators:
# a NUL or a newline in an id means two things to two consumers, and forges log lines.
_NO_CONTROLS: Final = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"
# Free text may have tabs and line breaks, no other control character.
_TEXT: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Text = Annotated[str, Field(min_length=1, max_length=256, pattern=_NO_CONTROLS)]
_MODEL = ConfigDict(strict=True, frozen=True, extra="ignore")


class _Data(BaseModel):
    model_config = _MODEL


class NoData(_Data):
    pass


class OpenedData(_Data):
    customer_id: Text
    support_tier: Tier
    severity: Severity | None = None
    impact: Impact | None = None
    problem_type: Text | None = None
    workaround_available: bool | None = None
    # For a policy set's selection rules (processor.sla.policy_set): the customer's contract
    # and region; the processor keeps neither beyond choosing the policy.
    contract: Text | None = None
    region: Text | None = None


class SeverityData(_Data):
    severity: Severity


class AgentData(_Data):
    agent_id: Text | None = None


class AcknowledgedData(_Data):
    step: Annotated[int, Field(ge=1, le=1000)]
    role: Role | None = None
    agent_id: Text | None = None


class StatusData(_Data):
    status: Annotated[str, Field(min_length=1, max_length=64, pattern=_NO_CONTROLS)]


class WindowData(_Data):
    window_start: UtcDatetime
    window_end: UtcDatetime

    @model_validator(mode="after")
    def _window_is_positive(self) -> WindowData:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class ScheduledData(WindowData):
    kind: Literal["planned", "emergency"]
    summary: Annotated[str, Field(max_length=4096, pattern=_TEXT)]
    services: tuple[Text, ...] = ()
    customers: tuple[Text, ...] = ()


class _Envelope(BaseModel):
    model_config = _MODEL

    specversion: Literal["1.0"]
    id: Text
    source: Annotated[str, Field(min_length=1, max_length=512, pattern=_NO_CONTROLS)]
    time: UtcDatetime
    subject: Text


class TicketOpened(_Envelope):
    type: Literal["ticket.opened"]
    data: OpenedData


class SeverityChanged(_Envelope):
    type: Literal["ticket.severity_changed"]
    data: SeverityData


class Responded(_Envelope):
    type: Literal["ticket.responded"]
    data: AgentData = AgentData()


class Updated(_Envelope):
    type: Literal["ticket.updated"]
    data: AgentData = AgentData()


class StatusChanged(_Envelope):
    type: Literal["ticket.status_changed"]
    data: StatusData


class EscalationAcknowledged(_Envelope):
    type: Literal["ticket.escalation_acknowledged"]
    data: AcknowledgedData


class Resolved(_Envelope):
    type: Literal["ticket.resolved"]
    data: NoData | None = None


class Closed(_Envelope):
    type: Literal["ticket.closed"]
    data: NoData | None = None


class Reopened(_Envelope):
    type: Literal["ticket.reopened"]
    data: NoData | None = None


class MaintenanceScheduled(_Envelope):
    type: Literal["maintenance.scheduled"]
    data: ScheduledData


class MaintenanceRescheduled(_Envelope):
    type: Literal["maintenance.rescheduled"]
    data: WindowData


class MaintenanceCancelled(_Envelope):
    type: Literal["maintenance.cancelled"]
    data: NoData | None = None


TicketEvent = (
    TicketOpened
    | SeverityChanged
    | Responded
    | Updated
    | StatusChanged
    | Resolved
    | Closed
    | Reopened
    | EscalationAcknowledged
)
MaintenanceEvent = MaintenanceScheduled | MaintenanceRescheduled | MaintenanceCancelled
InputEvent = TicketEvent | MaintenanceEvent

TICKET_TYPES: Final = frozenset(
    m.model_fields["type"].annotation.__args__[0] for m in TicketEvent.__args__
)
MAINTENANCE_TYPES: Final = frozenset(
    m.model_fields["type"].annotation.__args__[0] for m in MaintenanceEvent.__args__
)

# The member names of the contract: named in an error; any other may be payload.
_NAMES: Final = frozenset(
    name
    for model in (_Envelope, TicketOpened, OpenedData, SeverityData, AgentData, StatusData,
                  ScheduledData, AcknowledgedData)
    for name in model.model_fields
)  # fmt: skip

_INPUT: Final[TypeAdapter[InputEvent]] = TypeAdapter(
    Annotated[InputEvent, Field(discriminator="type")]
)
_UNKNOWN_TYPE: Final = frozenset({"union_tag_invalid", "union_tag_not_found"})


def parse_event(raw: bytes, max_bytes: int = MAX_EVENT_BYTES) -> InputEvent:
    """Parse one structured-mode CloudEvent; raise InvalidEvent with a bounded reason."""
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"event is {len(raw)} bytes, the limit is {max_bytes}")
    try:
        event = _INPUT.validate_json(raw)
    except _ValidationError as exc:
        raise _classify(exc) from None
    check_i_json(raw)
    return event


# The Kafka protocol binding of CloudEvents: structured mode (the value is the whole event,
# content-type application/cloudevents+json or none) and binary mode (attributes in ce_*
# headers, the value is the data, content-type its media type).
STRUCTURED: Final = "application/cloudevents+json"
_PREFIX: Final = "ce_"
_MEDIA_TYPE: Final = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}")


def parse_record(
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    max_bytes: int = MAX_EVENT_BYTES,
) -> InputEvent:
    """One Kafka record as a CloudEvent, in either mode; InvalidEvent with a bounded reason."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    size = len(value or b"")
    for name, raw in headers:
        size += len(name) + len(raw or b"")
        lower = name.lower()
        if lower == "content-type":
            content_type = _header_text(name, raw)
        elif lower.startswith(_PREFIX):
            if lower[3:] in attributes:
                raise InvalidEvent("invalid_envelope", f"header {name} given twice")
            attributes[lower[3:]] = _header_text(name, raw)
    if size > max_bytes:  # the record's headers count: they go wherever it goes
        raise InvalidEvent("too_large", f"event is {size} bytes, the limit is {max_bytes}")
    structured = content_type is not None and _media_type(content_type).startswith(
        "application/cloudevents"
    )
    if "specversion" in attributes and not structured:
        return _binary(value, attributes, content_type, max_bytes)
    if content_type is not None and _media_type(content_type) != STRUCTURED:
        raise InvalidEvent(
            "unsupported_content_type",
            f"content-type {_shown(content_type)} is neither {STRUCTURED} (structured mode) nor "
            "an event in binary mode (ce_specversion and the other attributes as ce_ headers)",
        )
    if value is None:
        raise InvalidEvent("malformed_json", "a null value (tombstone) is not an event")
    return parse_event(value, max_bytes)


def _binary(
    value: bytes | None, attributes: dict[str, str], content_type: str | None, max_bytes: int
) -> InputEvent:
    body = structured(value, attributes, content_type)
    return parse_event(body, max(max_bytes, len(body)))


def structured(value: bytes | None, attributes: dict[str, str], content_type: str | None) -> bytes:
    """A binary-mode event (attributes apart, `value` its data) as structured-mode JSON bytes, to
    be parsed by `parse_event`; InvalidEvent when the data is not JSON."""
    media = _media_type(content_type) if content_type is not None else "application/json"
    if not (media == "application/json" or media.endswith("+json")):
        raise InvalidEvent(
            "unsupported_content_type",
            f"binary-mode data of content-type {_shown(content_type or '')}: JSON is required",
        )
    if value:
        try:  # alone first: the data must be one JSON value, not a piece of the envelope
            orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent("malformed_json", f"data is not valid JSON: {exc.msg}") from None
    envelope = orjson.dumps(attributes)
    return envelope[:-1] + b',"data":' + value + b"}" if value else envelope


def _header_text(name: str, raw: bytes | None) -> str:
    try:
        return (raw or b"").decode()
    except UnicodeDecodeError:
        raise InvalidEvent("invalid_envelope", f"header {name} is not UTF-8") from None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _shown(content_type: str) -> str:
    """The media type if it looks like one; a header value is not echoed otherwise."""
    media = _media_type(content_type)
    return repr(media) if _MEDIA_TYPE.fullmatch(media) else "(not a media type)"


class _NotIJson(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) < len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        raise _NotIJson(f"duplicate member name {twice!r}" if twice in _NAMES else
                        "a duplicate member name")  # fmt: skip
    return members


def _no_constant(name: str) -> Any:
    raise _NotIJson(f"{name} is not a JSON number")


# The parser above takes the last of duplicate member names and the NaN and Infinity of
# JavaScript: the same bytes would then mean one thing here and another to a stricter
# consumer. Events must be I-JSON (RFC 7493): unique names, numbers only.
_STRICT: Final = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constant)


def check_i_json(raw: bytes) -> None:
    """InvalidEvent unless `raw` is I-JSON (RFC 7493)."""
    try:
        _STRICT.decode(raw.decode())
    except _NotIJson as exc:
        raise InvalidEvent("malformed_json", f"not I-JSON (RFC 7493): {exc}") from None
    except (ValueError, RecursionError) as exc:  # what the first parser took, this one did not
        raise InvalidEvent("malformed_json", f"not valid JSON: {exc}") from None


def _classify(exc: _ValidationError) -> InvalidEvent:
    first = exc.errors(include_url=False, include_input=False)[0]
    kind, loc = first["type"], first["loc"]
    where = ".".join(str(part) for part in loc[1:]) or "event"
    if kind == "json_invalid":
        return InvalidEvent("malformed_json", f"not valid JSON: {first['msg']}")
    if not loc and kind.endswith("_type"):
        return InvalidEvent("not_an_object", "a CloudEvent must be a JSON object")
    if kind in _UNKNOWN_TYPE:
        return InvalidEvent("unknown_type", "missing or unknown event type")
    reason = "invalid_data" if len(loc) > 1 and loc[1] == "data" else "invalid_envelope"
    if kind == "string_pattern_mismatch":  # the only patterns are _NO_CONTROLS and _TEXT
        return InvalidEvent(reason, f"{where}: a control character or line separator")
    return InvalidEvent(reason, f"{where}: {first['msg']}")
