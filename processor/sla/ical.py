"""Holiday calendars in iCalendar (RFC 5545): the dates their events mark within a range.

Read as governments and Google/Outlook holiday calendars publish them: one VEVENT per holiday,
or one per holiday that recurs yearly. A holiday is a day, so a timed event marks the date its
start is written with, in its own frame (a TZID, UTC or floating), never converted to another
zone: the zone that names a holiday is the one that knows its day. An event covers the dates
from its start's to that of the last instant before its end (DTEND is exclusive), on the same
wall clock. An end equal to the start (older GOV.UK files repeat DTSTART as DTEND) is one day;
one before it is an error.

Recurrence is the subset holiday calendars use, written here instead of taken from
python-dateutil's `rrulestr`: that accepts every rule (we would need a list of what to refuse
anyway), is no declared dependency, and leaves out a DTSTART that its rule does not match
(RFC 5545 3.8.5.3 counts it as the first occurrence). What this module does not read it refuses,
by name, rather than misread; a file-wide budget bounds what it expands.

Errors:
    IcalError -- malformed, unsupported or oversized input: "{source}: line {n}: {what}"; the
                 text of an event (SUMMARY, DESCRIPTION) is never quoted
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from processor.sla.exceptions import SlaError

MAX_BYTES: Final = 4 * 1024 * 1024
MAX_DATES: Final = 100_000
_ZERO: Final = timedelta(0)
_DAY: Final = timedelta(days=1)
_TICK: Final = timedelta(microseconds=1)
_WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# WKST is read and ignored: it changes only weekly rules and BYWEEKNO.
_RULE_PARTS: Final = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYDAY", "WKST"}
)
_SUPPORTED: Final = "only FREQ=YEARLY with INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY"
_PARAM_VALUE: Final = r'(?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*'
_CONTENT_LINE: Final = re.compile(rf"([A-Za-z0-9-]+)((?:;[A-Za-z0-9-]+={_PARAM_VALUE})*):(.*)")
_PARAMETER: Final = re.compile(rf";([A-Za-z0-9-]+)=({_PARAM_VALUE})")
_MOMENT: Final = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})Z?)?")
_DURATION: Final = re.compile(
    r"\+?P(?:([0-9]{1,9})W|(?:([0-9]{1,9})D)?"
    r"(?:T(?=[0-9])(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?)"
)
_WEEKDAY: Final = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


class IcalError(SlaError, ValueError):
    """The iCalendar text cannot be read; the message names the source and the line."""


class _Bad(Exception):
    """Malformed or unsupported input at `line`; `holidays_from_ical` adds the source."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line, self.what = line, what


@dataclass(frozen=True, slots=True)
class _Property:
    line: int  # the physical line it starts on
    name: str  # upper case
    params: Mapping[str, str]  # upper-case names, values without their quotes
    value: str


@dataclass(frozen=True, slots=True)
class _Event:
    line: int  # of its BEGIN:VEVENT
    properties: tuple[_Property, ...]

    def get(self, name: str) -> _Property | None:
        return next((p for p in self.properties if p.name == name), None)

    def every(self, name: str) -> list[_Property]:
        return [p for p in self.properties if p.name == name]

    @property
    def uid(self) -> str | None:
        found = self.get("UID")
        return found.value.strip() if found else None

    @property
    def label(self) -> str:
        """Names the event without its text: by UID, or by where it begins."""
        return f"event UID {_show(self.uid)}" if self.uid else f"event of line {self.line}"


@dataclass(frozen=True, slots=True)
class _Moment:
    """A DATE or DATE-TIME as written: its day, and its time of day (None for a DATE)."""

    day: date
    clock: timedelta | None


@dataclass(frozen=True, slots=True)
class _Rule:
    interval: int = 1
    count: int | None = None
    until: _Moment | None = None
    months: tuple[int, ...] = ()
    month_days: tuple[int, ...] = ()  # negative: from the month's end
    weekdays: tuple[tuple[int | None, int], ...] = ()  # (ordinal in the month or None, Monday=0)


@dataclass(slots=True)
class _Budget:
    """Dates the whole file may still expand to: a guard against rules that never end."""

    left: int = MAX_DATES

    def spend(self, line: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Bad(line, f"the calendar expands to more than {MAX_DATES:,} dates")


def holidays_from_ical(text: str, *, source: str, start: date, end: date) -> frozenset[date]:
    """Every date within [start, end] that a VEVENT of the calendar marks, cancelled ones aside.

    `source` names the text in error messages (a file name or URL).
    """
    _check_size(text, source)
    try:
        lines = list(_unfold(text))
        _check_start(lines)
        events = list(_events(_properties(lines)))
        return frozenset(_dates(events, start, end)) if start <= end else frozenset()
    except _Bad as bad:
        raise IcalError(f"{source}: line {bad.line}: {bad.what}") from None


def _check_size(text: str, source: str) -> None:
    # The character count bounds the byte count from below: a huge text is never encoded.
    size = len(text) if len(text) > MAX_BYTES else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise IcalError(f"{source}: {size:,} bytes, over the limit of {MAX_BYTES:,}")


# -- content lines and components --------------------------------------------------------------


def _unfold(text: str) -> Iterator[tuple[int, str]]:
    """Logical lines with the number of their first physical line, CRLF or LF alike.

    A line break followed by a space or tab folds a line (RFC 5545 3.1); both go.
    """
    first, pending = 0, None
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.removesuffix("\r")
        if line[:1] in (" ", "\t"):
            if pending is None:
                raise _Bad(number, "a folded line that continues no line")
            pending += line[1:]
            continue
        if pending is not None:
            yield first, pending
        first, pending = number, line or None
    if pending is not None:
        yield first, pending


def _properties(lines: Iterable[tuple[int, str]]) -> Iterator[_Property]:
    for number, line in lines:
        match = _CONTENT_LINE.fullmatch(line)
        if match is None:
            raise _Bad(number, "not a content line NAME[;PARAM=VALUE]:VALUE")
        name, params, value = match.groups()
        parsed = {k.upper(): v.replace('"', "") for k, v in _PARAMETER.findall(params)}
        yield _Property(number, name.upper(), parsed, value)


def _events(properties: Iterable[_Property]) -> Iterator[_Event]:
    """The VEVENTs directly inside a VCALENDAR; other components, and what an event nests
    (VALARM), are passed over."""
    stack: list[tuple[str, int]] = []
    event: list[_Property] = []
    for prop in properties:
        if prop.name == "BEGIN":
            _begin(stack, prop)
            event = [] if len(stack) == 2 else event
        elif prop.name == "END":
            name, line = _end(stack, prop)
            if name == "VEVENT" and len(stack) == 1:
                yield _Event(line, tuple(event))
        elif not stack:
            raise _Bad(prop.line, "a property outside BEGIN:VCALENDAR ... END:VCALENDAR")
        elif len(stack) == 2 and stack[1][0] == "VEVENT":
            event.append(prop)
    if stack:
        name, line = stack[-1]
        raise _Bad(line, f"BEGIN:{name} is never ended")


def _check_start(lines: list[tuple[int, str]]) -> None:
    """An error page or a JSON feed fails here, on its first line, not somewhere inside."""
    if not lines or lines[0][1].strip().upper() != "BEGIN:VCALENDAR":
        raise _Bad(lines[0][0] if lines else 1, "no BEGIN:VCALENDAR: not an iCalendar text")


def _begin(stack: list[tuple[str, int]], prop: _Property) -> None:
    name = prop.value.strip().upper()
    if not stack and name != "VCALENDAR":
        raise _Bad(prop.line, f"BEGIN:VCALENDAR expected, not BEGIN:{_show(name)}")
    stack.append((name, prop.line))


def _end(stack: list[tuple[str, int]], prop: _Property) -> tuple[str, int]:
    name = prop.value.strip().upper()
    if not stack or stack[-1][0] != name:
        opened = f"BEGIN:{stack[-1][0]} of line {stack[-1][1]}" if stack else "nothing"
        raise _Bad(prop.line, f"END:{_show(name)} where {opened} is open")
    return stack.pop()


# -- events as dates ---------------------------------------------------------------------------


def _dates(events: list[_Event], start: date, end: date) -> Iterator[date]:
    budget, moved = _Budget(), _moved(events)
    for event in events:
        if _cancelled(event):
            continue
        first = _start(event)
        extent = _extent(event, first)
        replaced = moved.get(event.uid or "", set()) if event.get("RECURRENCE-ID") is None else ()
        since = start - timedelta(days=min(extent, (start - date.min).days))
        for day in _occurrences(event, first, since, end, budget).difference(replaced):
            for covered in _covered(day, extent, start, end):
                budget.spend(event.line)
                yield covered


def _moved(events: list[_Event]) -> dict[str, set[date]]:
    """Occurrences that another VEVENT of the same UID replaces (its RECURRENCE-ID), by UID."""
    moved: dict[str, set[date]] = {}
    for event in events:
        recurrence = event.get("RECURRENCE-ID")
        if recurrence is None or event.uid is None:
            continue
        if recurrence.params.get("RANGE", "").upper() == "THISANDFUTURE":
            raise _Bad(recurrence.line, f"{event.label}: RANGE=THISANDFUTURE is not supported")
        moved.setdefault(event.uid, set()).add(_moment(recurrence).day)
    return moved


def _cancelled(event: _Event) -> bool:
    status = event.get("STATUS")
    return status is not None and status.value.strip().upper() == "CANCELLED"


def _start(event: _Event) -> _Moment:
    prop = event.get("DTSTART")
    if prop is None:
        raise _Bad(event.line, f"{event.label} has no DTSTART")
    return _moment(prop)


def _extent(event: _Event, first: _Moment) -> int:
    """How many days after an occurrence's first day it still covers: 0 for a one-day event."""
    end, duration = event.get("DTEND"), event.get("DURATION")
    if end is not None and duration is not None:
        raise _Bad(duration.line, f"{event.label} has both DTEND and DURATION")
    try:
        if end is not None:
            last = _moment(end)
            length = last.day - first.day + (last.clock or _ZERO) - (first.clock or _ZERO)
            if length < _ZERO:
                raise _Bad(end.line, f"{event.label} ends before it starts")
        elif duration is not None:
            length = _duration(duration)
        else:
            return 0
        return max(((first.clock or _ZERO) + length - _TICK) // _DAY, 0)
    except OverflowError:
        raise _Bad(event.line, f"{event.label} lasts longer than dates reach") from None


def _occurrences(
    event: _Event, first: _Moment, since: date, end: date, budget: _Budget
) -> set[date]:
    """First days of the event's occurrences: DTSTART's, its RRULE's and RDATEs, less EXDATEs."""
    # EXRULE is deprecated (RFC 5545), and a second RRULE is one its generators never write.
    extra = [*event.every("EXRULE"), *event.every("RRULE")[1:]]
    if extra:
        what = f"{extra[0].name} {_show(extra[0].value)}"
        raise _Bad(extra[0].line, f"{event.label}: {what} is not supported (one RRULE is)")
    days = {first.day}
    for prop in event.every("RRULE"):
        days.update(_expand(_parse_rule(prop, event.label), first, since, end, budget, prop.line))
    for prop in event.every("RDATE"):
        for moment in _moments(prop):
            budget.spend(prop.line)
            days.add(moment.day)
    for prop in event.every("EXDATE"):
        days.difference_update(moment.day for moment in _moments(prop))
    return days


def _covered(day: date, extent: int, start: date, end: date) -> Iterator[date]:
    """The days of an occurrence within [start, end]; counted, so date.max never overflows."""
    lo = max(day, start)
    hi = end if (end - day).days < extent else day + timedelta(days=extent)
    return (lo + timedelta(days=offset) for offset in range((hi - lo).days + 1))


# -- values ------------------------------------------------------------------------------------


def _moments(prop: _Property) -> list[_Moment]:
    kind = prop.params.get("VALUE", "DATE-TIME").upper()
    if kind not in ("DATE", "DATE-TIME"):
        raise _Bad(prop.line, f"{prop.name} of VALUE={_show(kind)} is not supported")
    return [
        _parse_moment(item, prop.name, prop.line, kind == "DATE") for item in prop.value.split(",")
    ]


def _moment(prop: _Property) -> _Moment:
    moments = _moments(prop)
    if len(moments) != 1:
        raise _Bad(prop.line, f"{prop.name} holds {len(moments)} values, not one")
    return moments[0]


def _parse_moment(text: str, name: str, line: int, date_only: bool) -> _Moment:
    """YYYYMMDD, or YYYYMMDDTHHMMSS with or without Z, read as written (no zone applied)."""
    match = _MOMENT.fullmatch(text.strip())
    if match is None or (date_only and match[4] is not None):
        shape = "YYYYMMDD" if date_only else "YYYYMMDD or YYYYMMDDTHHMMSS[Z]"
        raise _Bad(line, f"{name} {_show(text)} is not a date ({shape})")
    year, month, day, hour, minute, second = (int(group or 0) for group in match.groups())
    try:
        if hour > 23 or minute > 59 or second > 60:  # 60: a leap second
            raise ValueError
        clock = timedelta(hours=hour, minutes=minute, seconds=min(second, 59))
        return _Moment(date(year, month, day), None if match[4] is None else clock)
    except ValueError:
        raise _Bad(line, f"{name} {_show(text)} is no real date or time") from None


def _duration(prop: _Property) -> timedelta:
    text = prop.value.strip().upper()
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise _Bad(prop.line, f"DURATION {_show(text)} is not one like P1D, P1W or PT12H")
    weeks, days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def _show(text: str | None, limit: int = 80) -> str:
    """Input quoted in a message: repr'd (so no control characters) and cut short."""
    text = text or ""
    return repr(text if len(text) <= limit else f"{text[:limit]}...")


# -- yearly recurrence -------------------------------------------------------------------------


def _parse_rule(prop: _Property, label: str) -> _Rule:
    try:
        return _rule(_rule_parts(prop.value), prop.line)
    except ValueError as exc:
        reason = f"{exc} ({_SUPPORTED} is read)"
        raise _Bad(prop.line, f"{label}: RRULE {_show(prop.value)}: {reason}") from None


def _rule_parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not key:
            raise ValueError(f"{_show(item)} is not a NAME=VALUE part")
        if key in parts:
            raise ValueError(f"{_show(key)} is given twice")
        parts[key] = value.strip().upper()
    return parts


def _rule(parts: dict[str, str], line: int) -> _Rule:
    freq = parts.get("FREQ")
    if freq != "YEARLY":
        raise ValueError(f"FREQ={freq} is not supported" if freq else "it has no FREQ")
    unsupported = sorted(set(parts) - _RULE_PARTS)
    if unsupported:
        raise ValueError(f"{_show(', '.join(unsupported))} is not supported")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL together are not allowed")
    if "BYDAY" in parts and "BYMONTH" not in parts:
        raise ValueError("BYDAY without BYMONTH (weekdays of the whole year) is not supported")
    weekdays = tuple(_weekday(item) for item in _items(parts, "BYDAY"))
    months = tuple(sorted({_int(item, "BYMONTH", 1, 12) for item in _items(parts, "BYMONTH")}))
    month_days = tuple(_int(item, "BYMONTHDAY", -31, 31) for item in _items(parts, "BYMONTHDAY"))
    if month_days and any(ordinal is not None for ordinal, _ in weekdays):
        raise ValueError("BYDAY with an ordinal and BYMONTHDAY together are not supported")
    until = parts.get("UNTIL")
    return _Rule(
        interval=_int(parts.get("INTERVAL", "1"), "INTERVAL", 1, 9999),
        count=_int(parts["COUNT"], "COUNT", 1, 999_999_999) if "COUNT" in parts else None,
        until=_parse_moment(until, "UNTIL", line, date_only=False) if until else None,
        months=months,
        month_days=month_days,
        weekdays=weekdays,
    )


def _items(parts: dict[str, str], name: str) -> list[str]:
    return parts[name].split(",") if name in parts else []


def _int(text: str, name: str, lo: int, hi: int) -> int:
    text = text.strip()
    number = int(text) if re.fullmatch(r"[+-]?[0-9]{1,9}", text) else 0
    if number == 0 or not lo <= number <= hi:
        raise ValueError(f"{name} {_show(text)} is not a number from {lo} to {hi} (and not 0)")
    return number


def _weekday(text: str) -> tuple[int | None, int]:
    match = _WEEKDAY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"BYDAY {_show(text)} is not a weekday like MO, 1MO or -1MO")
    ordinal = None if match[1] is None else int(match[1])
    if ordinal is not None and not 1 <= abs(ordinal) <= 5:
        raise ValueError(f"BYDAY {_show(text)}: a month has 1 to 5 of each weekday")
    return ordinal, _WEEKDAYS.index(match[2])


def _expand(
    rule: _Rule, first: _Moment, since: date, end: date, budget: _Budget, line: int
) -> Iterator[date]:
    """The rule's days after DTSTART, in order, until COUNT, UNTIL or `end`.

    DTSTART is the first occurrence and counts for COUNT (RFC 5545 3.8.5.3): a rule with a
    COUNT is expanded from its first year; one without from the first of its years that can
    reach `since`.
    """
    made, year = 1, _first_year(rule, first.day.year, since.year)
    last = min(end.year, rule.until.day.year if rule.until else end.year)
    while year <= last:
        budget.spend(line)
        for day in _year_days(rule, first.day, year):
            if day <= first.day:
                continue
            if day > end or _past(rule.until, day, first.clock) or made == rule.count:
                return
            made += 1
            budget.spend(line)
            yield day
        year += rule.interval


def _first_year(rule: _Rule, first: int, since: int) -> int:
    if rule.count is not None or since <= first:
        return first
    return first + -(-(since - first) // rule.interval) * rule.interval


def _year_days(rule: _Rule, first: date, year: int) -> list[date]:
    """The rule's days in one year, in order, before DTSTART, COUNT and UNTIL are applied."""
    # As in RFC 5545's table for YEARLY: BYMONTHDAY alone expands over every month.
    months = rule.months or (range(1, 13) if rule.month_days else (first.month,))
    return sorted(day for month in months for day in _month_days(rule, first, year, month))


def _month_days(rule: _Rule, first: date, year: int, month: int) -> set[date]:
    length = monthrange(year, month)[1]
    if rule.month_days:
        numbers = {n if n > 0 else length + 1 + n for n in rule.month_days}
    elif rule.weekdays:
        numbers = set(range(1, length + 1))
    else:
        numbers = {first.day}
    days = {date(year, month, n) for n in numbers if 1 <= n <= length}
    # BYDAY narrows BYMONTHDAY's days (US Election Day) or picks from the whole month.
    return {day for day in days if _on_weekday(rule, day, length)} if rule.weekdays else days


def _on_weekday(rule: _Rule, day: date, length: int) -> bool:
    """BYDAY within a month: MO is every Monday, 1MO the first, -1MO the last."""
    from_start, from_end = (day.day - 1) // 7 + 1, -((length - day.day) // 7 + 1)
    return any(
        weekday == day.weekday() and ordinal in (None, from_start, from_end)
        for ordinal, weekday in rule.weekdays
    )


def _past(until: _Moment | None, day: date, clock: timedelta | None) -> bool:
    if until is None:
        return False
    if until.clock is None or clock is None:
        return day > until.day
    return (day, clock) > (until.day, until.clock)
