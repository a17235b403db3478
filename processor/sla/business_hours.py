"""Business-hours arithmetic: when working time runs out, and how much lies between instants."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

Interval = tuple[time, time]
DaySchedule = tuple[Interval, ...]
Weekly = tuple[DaySchedule, ...]
Span = tuple[datetime, datetime]

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_IDLE_DAYS: Final = 3660
_MIDNIGHT: Final = time(0, 0)
_DAY: Final = timedelta(days=1)
_ZERO: Final = timedelta(0)
_TICK: Final = timedelta(microseconds=1)
_INTERVAL_TEXT: Final = re.compile(r"(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)")


class WorkingClock(Protocol):
    """Working-time arithmetic between aware instants; results are in UTC."""

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def working_time(self, start: datetime, end: datetime) -> timedelta: ...


@dataclass(frozen=True, slots=True)
class AlwaysOn:
    """Every instant is working time: 24x7x365."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        # The engine's instants are already UTC; the identity test keeps its hot path cheap.
        return (start if start.tzinfo is UTC else _utc(start)) + _non_negative(duration)

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        return max(_utc(end) - _utc(start), _ZERO)


ALWAYS_ON: Final = AlwaysOn()


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Weekly local working hours in one timezone, less holidays; Monday is weekly[0].

    Each local wall time becomes the earliest instant whose wall clock reads that time or later:
    a time skipped by a spring-forward gap becomes the first instant after the gap, and a time
    repeated by a fall-back becomes its first occurrence (fold=0), for interval starts and ends
    alike. That mapping is monotonic, so intervals never invert or overlap, an interval ending
    at 24:00 (written time(0, 0)) meets the next day's 00:00 start, and a day's length is real
    elapsed time (23 h or 25 h across a DST change).
    """

    timezone: ZoneInfo
    weekly: Weekly
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.weekly) != len(DAY_NAMES):
            raise ValueError(f"weekly needs 7 days (Monday first), got {len(self.weekly)}")
        for name, intervals in zip(DAY_NAMES, self.weekly, strict=True):
            _check_day(name, intervals)
        if not any(self.weekly):
            raise ValueError("a business calendar needs working hours on at least one weekday")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of working time after `start`, counting from the next interval.

        A zero duration returns `start` itself even outside working hours: an immediate
        deadline stays immediate rather than waiting for the office to open.
        """
        origin, remaining = _utc(start), _non_negative(duration)
        if not remaining:
            return origin
        spans = self._spans_after(origin)
        lo, hi = next(spans)
        while remaining > hi - lo:
            remaining -= hi - lo
            lo, hi = next(spans)
        return lo + remaining

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants; zero when `end` is not after `start`."""
        a, b = _utc(start), _utc(end)
        if b <= a:
            return _ZERO
        # One spare day each side: a wall clock can step back across midnight.
        day, last = self._local_date(a) - _DAY, self._local_date(b) + _DAY
        total = _ZERO
        while day <= last:
            for lo, hi in self._spans(day):
                total += max(min(hi, b) - max(lo, a), _ZERO)
            day += _DAY
        return total

    def spans(self, start: datetime, end: datetime) -> Iterator[Span]:
        """The working spans within [start, end), clipped to it, in order."""
        a, b = _utc(start), _utc(end)
        if b <= a:
            return
        for lo, hi in self._spans_after(a):
            if lo >= b:
                return
            yield lo, min(hi, b)

    def _spans_after(self, origin: datetime) -> Iterator[Span]:
        """Working spans ending after `origin`, clipped to begin no earlier than it."""
        day, idle = self._local_date(origin) - _DAY, 0
        while idle < MAX_IDLE_DAYS:
            spans = [(max(lo, origin), hi) for lo, hi in self._spans(day) if hi > origin]
            idle = 0 if spans else idle + 1
            yield from spans
            day += _DAY
        raise ValueError(f"no working hours in {MAX_IDLE_DAYS} consecutive days up to {day}")

    def _spans(self, day: date) -> list[Span]:
        """The day's working intervals as UTC instants."""
        if day in self.holidays:
            return []
        tz = self.timezone
        return [
            (_instant(datetime.combine(day, start, tz)), _instant(_end_wall(day, end, tz)))
            for start, end in self.weekly[day.weekday()]
        ]

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.timezone).date()


def parse_weekly(spec: Mapping[str, Sequence[str]]) -> Weekly:
    """`{"mon": ["09:00-17:00"], ...}` as a `weekly` tuple; a missing day is closed."""
    unknown = sorted(set(spec) - set(DAY_NAMES))
    if unknown:
        raise ValueError(f"unknown day name(s) {unknown}; expected some of {list(DAY_NAMES)}")
    return tuple(_parse_day(name, spec.get(name, ())) for name in DAY_NAMES)


def _parse_day(name: str, texts: Sequence[str]) -> DaySchedule:
    # A bare string is a Sequence[str] too, and would parse one character at a time.
    if isinstance(texts, str):
        raise ValueError(f"{name}: expected a list of intervals, got the string {texts!r}")
    intervals = tuple(sorted(_parse_interval(name, text) for text in texts))
    _check_day(name, intervals)
    return intervals


def _parse_interval(name: str, text: str) -> Interval:
    match = _INTERVAL_TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{name}: {text!r} is not an interval like '09:00-17:00'")
    start_hour, start_minute, end_hour, end_minute = map(int, match.groups())
    if (end_hour, end_minute) <= (start_hour, start_minute):
        raise ValueError(f"{name}: {text!r} does not end after it starts (midnight is 24:00)")
    try:
        end = _MIDNIGHT if (end_hour, end_minute) == (24, 0) else time(end_hour, end_minute)
        return time(start_hour, start_minute), end
    except ValueError:
        raise ValueError(f"{name}: {text!r} holds an impossible time of day") from None


def _check_day(name: str, intervals: DaySchedule) -> None:
    """Intervals must be non-empty, sorted and disjoint; an end of 00:00 means 24:00."""
    previous_end = _ZERO
    for start, end in intervals:
        lo, hi = _since_midnight(start), _since_midnight(end) or _DAY
        if hi <= lo:
            raise ValueError(f"{name}: {_show(start, end)!r} does not end after it starts")
        if lo < previous_end:
            raise ValueError(f"{name}: {_show(start, end)!r} overlaps or precedes the one before")
        previous_end = hi


def _since_midnight(moment: time) -> timedelta:
    return timedelta(
        hours=moment.hour,
        minutes=moment.minute,
        seconds=moment.second,
        microseconds=moment.microsecond,
    )


def _show(start: time, end: time) -> str:
    return f"{start:%H:%M}-{'24:00' if end == _MIDNIGHT else f'{end:%H:%M}'}"


def _end_wall(day: date, end: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day + _DAY if end == _MIDNIGHT else day, end, tz)


def _instant(local: datetime) -> datetime:
    """The earliest instant whose wall clock reads `local` (fold=0) or later, in UTC."""
    instant = local.astimezone(UTC)
    # In a gap, fold=0 borrows the offset from before it, which the instant then contradicts.
    if instant.astimezone(local.tzinfo).utcoffset() == local.utcoffset():
        return instant
    return _end_of_gap(local)


def _end_of_gap(local: datetime) -> datetime:
    """The first instant after the spring-forward gap that swallows `local`, by bisection."""
    # PEP 495: in a gap, fold=1 applies the later offset (an instant before the transition)
    # and fold=0 the earlier one (an instant after it).
    before, after = local.replace(fold=1).astimezone(UTC), local.astimezone(UTC)
    offset = after.astimezone(local.tzinfo).utcoffset()
    while after - before > _TICK:
        middle = before + (after - before) / 2
        if middle.astimezone(local.tzinfo).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return after


def _utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _non_negative(duration: timedelta) -> timedelta:
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    return duration
