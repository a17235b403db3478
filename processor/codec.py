"""Table values: ticket and maintenance states as compact, versioned JSON arrays.

A state is stored as `[kind, 5, policy, next_due, field...]`, its fields in dataclass order;
instants are integer microseconds since the epoch and durations integer microseconds, so decoding
is exact. `next_due` is the state's next deadline under the policy whose fingerprint is `policy`:
rebuilding a deadline index reads it with `peek` instead of decoding the state (a tenth of the
cost). Version 3 and 4 states are self-describing: none of their pending deadlines has fired (a
tick stores the state it advanced). Version 3 is version 4 without the ticket fields added after
`seen_ids` (warnings, acknowledgements, corrections, surveys): decoding fills in their defaults.
A ticket's `base` (the state of its last event) is stored within it, in the same layout. A
version 4 ticket value may end with one more element, its timeline (`processor.timelines`: a
text the codec carries and never reads). Version 2 values (the same layout) and version 1 values
(`[kind, 1, field...]`, without the two) were written when ticks did not store what they fired,
behind a per-partition fired watermark: they are still decoded, and `LEGACY` tells the caller to
advance them through that watermark. Version 5 appended each state's governing policy version
(`policy`, decisions.md 45); version 4 values decode with it empty.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final, NamedTuple, get_args, get_origin

import orjson

from processor.instants import MICROSECOND, from_micros, micros
from processor.sla.engine import State
from processor.sla.maintenance import Maintenance
from processor.sla.ticket import Ticket
from processor.sla.vocabulary import Severity, Tier

VERSION: Final = 5
LEGACY: Final = frozenset({1, 2})  # may lag their partition's fired watermark
# Versions of the current layout less fields appended later (their defaults fill them in):
# version 3 values lack the ticket's fields from `warned` on, version 4 values `policy`.
SHORTER: Final = frozenset({2, 3, 4})
_TIMELINED: Final = frozenset({4, 5})  # versions whose ticket values may end with a timeline
_HEAD: Final = 4  # kind, version, policy, next_due


class CorruptState(ValueError):
    """A stored value that this version cannot decode."""


Converter = Callable[[Any], Any] | None  # None: the value is stored as it is


def _converters(hint: Any) -> tuple[Converter, Converter]:
    """(encode, decode) for one field's type hint."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        inner = next(arg for arg in get_args(hint) if arg is not type(None))
        enc, dec = _converters(inner)
        if enc is None or dec is None:
            return enc, dec
        return (lambda v: None if v is None else enc(v)), (lambda v: None if v is None else dec(v))
    if hint is datetime:
        return micros, from_micros
    if hint is Ticket:  # a ticket's `base`: the state of its last event, stored within it
        return (lambda v: _LAYOUTS["t"].encode(v)), (lambda v: _LAYOUTS["t"].decode(v))
    if hint is timedelta:
        return (lambda v: v // MICROSECOND), (lambda v: v * MICROSECOND)
    if isinstance(hint, type) and issubclass(hint, Enum):
        # A lookup in the value map: calling the enum class costs ten times as much.
        return operator.attrgetter("value"), hint._value2member_map_.__getitem__
    if get_origin(hint) is frozenset:
        enc, dec = _total(*_converters(get_args(hint)[0]))
        return (lambda v: sorted(map(enc, v))), (lambda v: frozenset(map(dec, v)))
    args = get_args(hint)
    if get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        enc, dec = _total(*_converters(args[0]))
        return (lambda v: [enc(x) for x in v]), (lambda v: tuple(dec(x) for x in v))
    if get_origin(hint) is tuple:  # a fixed-length tuple such as (Severity, step number)
        pairs = [_total(*_converters(arg)) for arg in args]
        return (lambda v: [e(x) for (e, _), x in zip(pairs, v, strict=True)]), (
            lambda v: tuple(d(x) for (_, d), x in zip(pairs, v, strict=True))
        )
    return None, None


def _same(value: Any) -> Any:
    return value


def _total(enc: Converter, dec: Converter) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    return enc or _same, dec or _same


class _Layout:
    """One state class: its fields in order, and how each is stored.

    Decoding fills a new instance's dict directly, as `processor.sla.values.evolve` copies one:
    a frozen dataclass's `__init__` sets each field through `object.__setattr__`, which was
    half of the decoding time (states have no `__post_init__` to skip).
    """

    def __init__(self, cls: type[Any]) -> None:
        assert not hasattr(cls, "__post_init__"), f"{cls.__name__} must not need __init__"
        hints = typing.get_type_hints(cls)
        self.cls = cls
        self.names = tuple(f.name for f in dataclasses.fields(cls))
        self.fields = operator.attrgetter(*self.names)
        pairs = [_converters(hints[name]) for name in self.names]
        self.encoders = [(i, enc) for i, (enc, _) in enumerate(pairs) if enc is not None]
        self.decoders = [(i, dec) for i, (_, dec) in enumerate(pairs) if dec is not None]
        # Filling in the fields that versions before 4 lack (they all have defaults).
        self.defaults = [f.default for f in dataclasses.fields(cls)]
        assert self.names[-1] == "policy", f"{cls.__name__}: `policy` is the last field"
        last = "seen_ids" if cls is Ticket else self.names[-2]
        self.older = older = self.names.index(last) + 1  # fields in versions 1 to 3
        # Fields stored by each version.
        self.counts = {1: older, 2: older, 3: older, 4: len(self.names) - 1, 5: len(self.names)}

    def encode(self, state: Any) -> list[Any]:
        values = list(self.fields(state))
        for i, enc in self.encoders:
            values[i] = enc(values[i])
        return values

    def decode(self, values: list[Any]) -> Any:
        if len(values) < len(self.names):
            values += self.defaults[len(values) :]
        for i, dec in self.decoders:
            values[i] = dec(values[i])
        state = object.__new__(self.cls)
        vars(state).update(zip(self.names, values, strict=True))
        return state


_LAYOUTS: Final = {"t": _Layout(Ticket), "m": _Layout(Maintenance)}
_KIND_OF: Final = {Ticket: "t", Maintenance: "m"}


def encode_state(state: State, next_due: datetime | None, policy: str, timeline: str = "") -> bytes:
    """`state` with its next deadline, as computed under the policy fingerprinted `policy`,
    and a ticket's timeline text, if any."""
    kind = _KIND_OF[type(state)]
    values = _LAYOUTS[kind].encode(state)
    due = None if next_due is None else micros(next_due)
    tail = [timeline] if timeline else []
    # orjson 3.13's result keeps its 4 KiB working buffer; tables hold values for long, so
    # store a right-sized copy (measured: 4,098 -> 177 bytes retained per ticket state).
    return bytes(memoryview(orjson.dumps([kind, VERSION, policy, due, *values, *tail])))


def decode_state(raw: bytes) -> State:
    return decode_stored(raw)[0]


def decode_stored(raw: bytes) -> tuple[State, int]:
    """The state and the codec version that wrote it."""
    state, version, _ = decode_value(raw)
    return state, version


def decode_value(raw: bytes) -> tuple[State, int, str]:
    """The state, the codec version that wrote it, and the timeline text stored with it."""
    try:
        kind, version, *values = orjson.loads(raw)
        layout = _LAYOUTS[kind]
        if version == VERSION or version in SHORTER:
            values = values[_HEAD - 2 :]
        elif version != 1:
            raise CorruptState(f"state of kind {kind!r} version {version} is not decodable")
        timeline = ""
        fields = layout.counts[version]
        if version in _TIMELINED and len(values) == fields + 1 and isinstance(values[-1], str):
            timeline = values.pop()
        if len(values) != fields:
            raise CorruptState(f"state of kind {kind!r} has {len(values)} fields")
        state: State = layout.decode(values)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise CorruptState(f"undecodable state: {exc}") from exc
    return state, version, timeline


class Peek(NamedTuple):
    """What a stored value tells without decoding the state."""

    policy: str  # the fingerprint of the policy it was stored under
    due_us: int | None  # its next deadline, epoch microseconds
    open_label: tuple[str, str] | None  # (severity, tier) of an open ticket, else None


_TICKET_FIELDS: Final = _LAYOUTS["t"].names
_PHASE, _SEVERITY, _TIER = (
    _HEAD + _TICKET_FIELDS.index(name) for name in ("phase", "severity", "tier")
)
_LENGTHS: Final = {kind: _HEAD + len(layout.names) for kind, layout in _LAYOUTS.items()}
_SEVERITIES: Final = frozenset(s.value for s in Severity)
_TIERS: Final = frozenset(t.value for t in Tier)


def peek(raw: bytes) -> Peek | None:
    """(policy, next due in epoch microseconds, (severity, tier) of an open ticket else None),
    read without decoding the state; None when only decoding can tell (an earlier version, or
    corrupt).
    """
    try:
        values = orjson.loads(raw)
        extra = len(values) - _LENGTHS[values[0]]
        if values[1] != VERSION or extra not in (0, 1) or (extra and type(values[-1]) is not str):
            return None
        label = None
        if values[0] == "t" and values[_PHASE] == "open":
            label = (values[_SEVERITY], values[_TIER])
            if label[0] not in _SEVERITIES or label[1] not in _TIERS:
                return None
        policy, due = values[2], values[3]
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
        return None
    if not isinstance(policy, str) or not (due is None or type(due) is int):
        return None
    return Peek(policy, due, label)
