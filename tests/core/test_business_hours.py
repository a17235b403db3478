"""Business-hours arithmetic: table-driven cases, DST in both directions, and invariants."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from processor.sla.business_hours import (
    ALWAYS_ON,
    DAY_NAMES,
    AlwaysOn,
    BusinessCalendar,
    Weekly,
    WorkingClock,
    parse_weekly,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
H = timedelta(hours=1)
TICK = timedelta(microseconds=1)

OFFICE = parse_weekly({day: ["09:00-17:00"] for day in WEEKDAYS})
ALL_WEEK = parse_weekly({day: ["00:00-24:00"] for day in DAY_NAMES})
FIVE_DAYS = parse_weekly({day: ["00:00-24:00"] for day in WEEKDAYS})
WEEKENDS = parse_weekly({"sat": ["00:00-24:00"], "sun": ["00:00-24:00"]})
NIGHTS = parse_weekly({day: ["00:00-06:00", "22:00-24:00"] for day in DAY_NAMES})
CHRISTMAS = frozenset({date(2026, 12, 25), date(2026, 12, 28)})


def office(tz: ZoneInfo, spec: Mapping[str, Sequence[str]]) -> BusinessCalendar:
    return BusinessCalendar(tz, parse_weekly(spec))


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def london(*fields: int) -> datetime:
    return local(LONDON, *fields)


def new_york(*fields: int) -> datetime:
    return local(NEW_YORK, *fields)


def utc(*fields: int) -> datetime:
    return local(ZoneInfo("UTC"), *fields).astimezone(UTC)


LONDON_OFFICE = BusinessCalendar(LONDON, OFFICE)
LONDON_XMAS = BusinessCalendar(LONDON, OFFICE, CHRISTMAS)
LONDON_24X5 = BusinessCalendar(LONDON, FIVE_DAYS)
LONDON_WEEKENDS = BusinessCalendar(LONDON, WEEKENDS)
LONDON_NIGHTS = BusinessCalendar(LONDON, NIGHTS)
NY_OFFICE = BusinessCalendar(NEW_YORK, OFFICE)
NY_WEEKENDS = BusinessCalendar(NEW_YORK, WEEKENDS)
NY_NIGHTS = BusinessCalendar(NEW_YORK, NIGHTS)
NY_ALL_WEEK = BusinessCalendar(NEW_YORK, ALL_WEEK)
# 02:30 is skipped on 2026-03-08, so this opens at 03:00 EDT that day.
NY_GAP = office(NEW_YORK, {"sun": ["02:30-05:00"]})
# 01:30 happens twice on 2026-11-01; these open / close at the first, 01:30 EDT.
NY_FOLD_START = office(NEW_YORK, {"sun": ["01:30-03:00"]})
NY_FOLD_END = office(NEW_YORK, {"sun": ["00:00-01:30"]})

ADD_CASES = [
    ("before hours", LONDON_OFFICE, london(2026, 6, 1, 7), 2 * H, utc(2026, 6, 1, 10)),
    ("inside hours", LONDON_OFFICE, london(2026, 6, 1, 10), 3 * H, utc(2026, 6, 1, 12)),
    ("fills the day", LONDON_OFFICE, london(2026, 6, 1, 9), 8 * H, utc(2026, 6, 1, 16)),
    ("from closing", LONDON_OFFICE, london(2026, 6, 1, 17), H, utc(2026, 6, 2, 9)),
    ("fri to mon", LONDON_OFFICE, london(2026, 6, 5, 16), 2 * H, utc(2026, 6, 8, 9)),
    ("one week", LONDON_OFFICE, london(2026, 6, 1, 9), 40 * H, utc(2026, 6, 5, 16)),
    ("week and 1h", LONDON_OFFICE, london(2026, 6, 1, 9), 41 * H, utc(2026, 6, 8, 9)),
    ("over holidays", LONDON_XMAS, london(2026, 12, 24, 16), 2 * H, utc(2026, 12, 29, 10)),
    ("from a holiday", LONDON_XMAS, london(2026, 12, 25, 12), H, utc(2026, 12, 29, 10)),
    ("zero when closed", LONDON_OFFICE, london(2026, 6, 6, 12), 0 * H, utc(2026, 6, 6, 11)),
    ("ny before hours", NY_OFFICE, new_york(2026, 6, 1, 8), H, utc(2026, 6, 1, 14)),
    ("us spring wknd", NY_OFFICE, new_york(2026, 3, 6, 16), 2 * H, utc(2026, 3, 9, 14)),
    ("us fall wknd", NY_OFFICE, new_york(2026, 10, 30, 16), 2 * H, utc(2026, 11, 2, 15)),
    ("eu spring wknd", LONDON_OFFICE, london(2026, 3, 27, 16), 2 * H, utc(2026, 3, 30, 9)),
    ("eu fall wknd", LONDON_OFFICE, london(2026, 10, 23, 16), 2 * H, utc(2026, 10, 26, 10)),
    # Whole-day weekends: the Sunday is 23 h long in spring and 25 h in autumn.
    ("us 23h sunday", NY_WEEKENDS, new_york(2026, 3, 7), 47 * H, utc(2026, 3, 9, 4)),
    ("us 23h + 1h", NY_WEEKENDS, new_york(2026, 3, 7), 48 * H, utc(2026, 3, 14, 5)),
    ("us 25h sunday", NY_WEEKENDS, new_york(2026, 10, 31), 49 * H, utc(2026, 11, 2, 5)),
    ("eu 23h sunday", LONDON_WEEKENDS, london(2026, 3, 28), 47 * H, utc(2026, 3, 29, 23)),
    ("eu 25h sunday", LONDON_WEEKENDS, london(2026, 10, 24), 49 * H, utc(2026, 10, 26)),
    # Night shifts 22:00-06:00: the short night runs out early, the long one lasts.
    ("us short night", NY_NIGHTS, new_york(2026, 3, 7, 22), 8 * H, utc(2026, 3, 9, 3)),
    ("us long night", NY_NIGHTS, new_york(2026, 10, 31, 22), 8 * H, utc(2026, 11, 1, 10)),
    ("eu short night", LONDON_NIGHTS, london(2026, 3, 28, 22), 8 * H, utc(2026, 3, 29, 22)),
    ("eu long night", LONDON_NIGHTS, london(2026, 10, 24, 22), 8 * H, utc(2026, 10, 25, 5)),
    ("24x7 over dst", NY_ALL_WEEK, new_york(2026, 3, 8), 24 * H, utc(2026, 3, 9, 5)),
    # 24x5: Monday 00:00 to Friday 24:00 is one stretch, midnights included.
    ("24x5 whole week", LONDON_24X5, london(2026, 6, 1), 120 * H, utc(2026, 6, 5, 23)),
    ("24x5 then mon", LONDON_24X5, london(2026, 6, 1), 121 * H, utc(2026, 6, 8)),
    ("24x5 past midnight", LONDON_24X5, london(2026, 6, 2, 23, 30), H, utc(2026, 6, 2, 23, 30)),
    ("start in gap", NY_GAP, new_york(2026, 3, 8), H, utc(2026, 3, 8, 8)),
    ("start in fold", NY_FOLD_START, new_york(2026, 11, 1), H, utc(2026, 11, 1, 6, 30)),
]


@pytest.mark.parametrize(
    ("clock", "start", "duration", "expected"),
    [case[1:] for case in ADD_CASES],
    ids=[case[0] for case in ADD_CASES],
)
def test_add(
    clock: BusinessCalendar, start: datetime, duration: timedelta, expected: datetime
) -> None:
    result = clock.add(start, duration)
    assert result == expected
    assert result.tzinfo is UTC


WORKING_TIME_CASES = [
    ("one day", LONDON_OFFICE, london(2026, 6, 1, 8), london(2026, 6, 1, 18), 8 * H),
    ("day to day", LONDON_OFFICE, london(2026, 6, 1, 10), london(2026, 6, 2, 10), 8 * H),
    ("fri to mon", LONDON_OFFICE, london(2026, 6, 5, 16), london(2026, 6, 8, 10), 2 * H),
    ("over holidays", LONDON_XMAS, london(2026, 12, 24, 16), london(2026, 12, 29, 10), 2 * H),
    ("backwards", LONDON_OFFICE, london(2026, 6, 2, 10), london(2026, 6, 1, 10), 0 * H),
    ("us 23h day", NY_WEEKENDS, new_york(2026, 3, 8), new_york(2026, 3, 9), 23 * H),
    ("us 25h day", NY_WEEKENDS, new_york(2026, 11, 1), new_york(2026, 11, 2), 25 * H),
    ("eu 23h day", LONDON_WEEKENDS, london(2026, 3, 29), london(2026, 3, 30), 23 * H),
    ("eu 25h day", LONDON_WEEKENDS, london(2026, 10, 25), london(2026, 10, 26), 25 * H),
    ("us short night", NY_NIGHTS, new_york(2026, 3, 7, 22), new_york(2026, 3, 8, 6), 7 * H),
    ("us long night", NY_NIGHTS, new_york(2026, 10, 31, 22), new_york(2026, 11, 1, 6), 9 * H),
    ("eu short night", LONDON_NIGHTS, london(2026, 3, 28, 22), london(2026, 3, 29, 6), 7 * H),
    ("eu long night", LONDON_NIGHTS, london(2026, 10, 24, 22), london(2026, 10, 25, 6), 9 * H),
    ("24x5 weekend", LONDON_24X5, london(2026, 6, 5, 20), london(2026, 6, 8, 4), 8 * H),
    ("24x5 week", LONDON_24X5, london(2026, 6, 1), london(2026, 6, 8), 120 * H),
    ("gap start", NY_GAP, new_york(2026, 3, 8), new_york(2026, 3, 9), 2 * H),
    ("fold start", NY_FOLD_START, new_york(2026, 11, 1), new_york(2026, 11, 2), 2.5 * H),
    ("fold end", NY_FOLD_END, new_york(2026, 11, 1), new_york(2026, 11, 2), 1.5 * H),
]


@pytest.mark.parametrize(
    ("clock", "start", "end", "expected"),
    [case[1:] for case in WORKING_TIME_CASES],
    ids=[case[0] for case in WORKING_TIME_CASES],
)
def test_working_time(
    clock: BusinessCalendar, start: datetime, end: datetime, expected: timedelta
) -> None:
    assert clock.working_time(start, end) == expected


def test_always_on_is_plain_arithmetic() -> None:
    clock: WorkingClock = ALWAYS_ON
    start = new_york(2026, 3, 7, 12)
    assert clock.add(start, 24 * H) == utc(2026, 3, 8, 17)
    assert clock.working_time(start, new_york(2026, 3, 8, 12)) == 23 * H
    assert clock.working_time(new_york(2026, 3, 8, 12), start) == 0 * H


def test_parse_weekly_sorts_and_reads_midnight() -> None:
    weekly = parse_weekly({"mon": ["13:00-17:00", "9:00 - 12:00"], "fri": ["22:00-24:00"]})
    assert weekly == (
        ((time(9), time(12)), (time(13), time(17))),
        (),
        (),
        (),
        ((time(22), time(0)),),
        (),
        (),
    )


NAIVE = datetime(2026, 6, 1, 9)
AWARE = london(2026, 6, 1, 9)


@pytest.mark.parametrize("clock", [ALWAYS_ON, LONDON_OFFICE], ids=["always", "office"])
def test_naive_datetimes_and_negative_durations_are_rejected(clock: WorkingClock) -> None:
    with pytest.raises(ValueError, match="naive"):
        clock.add(NAIVE, H)
    with pytest.raises(ValueError, match="naive"):
        clock.working_time(NAIVE, AWARE)
    with pytest.raises(ValueError, match="naive"):
        clock.working_time(AWARE, NAIVE)
    with pytest.raises(ValueError, match="negative"):
        clock.add(AWARE, -TICK)


def monday_only(*intervals: tuple[time, time]) -> Weekly:
    return (intervals, (), (), (), (), (), ())


@pytest.mark.parametrize(
    ("weekly", "message"),
    [
        (((),) * 7, "at least one weekday"),
        (((), ()), "needs 7 days"),
        (monday_only((time(12), time(9))), "mon: '12:00-09:00' does not end after"),
        (monday_only((time(9), time(12)), (time(11), time(13))), "mon: '11:00-13:00' overlaps"),
        (monday_only((time(13), time(17)), (time(9), time(12))), "mon: '09:00-12:00' overlaps"),
    ],
    ids=["empty", "short", "inverted", "overlapping", "unsorted"],
)
def test_bad_weekly_is_rejected(weekly: Weekly, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BusinessCalendar(LONDON, weekly)


def test_holidays_covering_a_decade_stop_the_search() -> None:
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(600))
    clock = BusinessCalendar(LONDON, parse_weekly({"mon": ["09:00-17:00"]}), mondays)
    with pytest.raises(ValueError, match="no working hours"):
        clock.add(AWARE, H)
    assert clock.working_time(AWARE, london(2030, 1, 1)) == 0 * H


@pytest.mark.parametrize(
    ("spec", "day", "text"),
    [
        ({"mon": ["9-17"]}, "mon", "9-17"),
        ({"tue": ["17:00-09:00"]}, "tue", "17:00-09:00"),
        ({"wed": ["00:00-00:00"]}, "wed", "00:00-00:00"),
        ({"thu": ["09:00-12:00", "11:00-13:00"]}, "thu", "11:00-13:00"),
        ({"fri": ["09:00-25:00"]}, "fri", "09:00-25:00"),
        ({"sat": ["09:61-10:00"]}, "sat", "09:61-10:00"),
        ({"sun": ["24:00-24:00"]}, "sun", "24:00-24:00"),
        ({"sun": "09:00-17:00"}, "sun", "09:00-17:00"),
        ({"funday": ["09:00-17:00"]}, "unknown day", "funday"),
    ],
)
def test_malformed_spec_names_day_and_text(
    spec: Mapping[str, Sequence[str]], day: str, text: str
) -> None:
    with pytest.raises(ValueError, match=rf"{day}.*{re.escape(text)}"):
        parse_weekly(spec)


# Property-based invariants over fixed and random calendars, with starts crowded around DST.

ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"]
TRANSITIONS = [
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
]


@st.composite
def weeklies(draw: st.DrawFn) -> Weekly:
    days = []
    for _ in DAY_NAMES:
        # Boundaries on a quarter-hour grid, paired off into sorted disjoint intervals.
        marks = sorted(draw(st.lists(st.integers(0, 96), unique=True, max_size=6)))
        times = [time(m // 4 % 24, m % 4 * 15) for m in marks[: len(marks) // 2 * 2]]
        days.append(tuple(zip(times[::2], times[1::2], strict=True)))
    assume(any(days))
    return tuple(days)


random_calendars = st.builds(
    BusinessCalendar,
    st.sampled_from(ZONES).map(ZoneInfo),
    weeklies(),
    st.frozensets(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=30),
)
fixed_calendars = st.sampled_from(
    [
        BusinessCalendar(tz, weekly)
        for tz in (LONDON, NEW_YORK)
        for weekly in (OFFICE, FIVE_DAYS, NIGHTS, WEEKENDS)
    ]
    + [LONDON_XMAS]
)
calendars = st.one_of(fixed_calendars, random_calendars)
starts = st.one_of(
    st.datetimes(datetime(2025, 12, 1), datetime(2027, 1, 31), timezones=st.just(UTC)),
    st.builds(operator.add, st.sampled_from(TRANSITIONS), st.timedeltas(-72 * H, 72 * H)),
)
durations = st.timedeltas(timedelta(0), 10 * 24 * H)
FAST = settings(max_examples=150, deadline=None)


@FAST
@given(calendars, starts, durations)
def test_working_time_inverts_add(
    clock: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    assert clock.working_time(start, clock.add(start, duration)) == duration


@FAST
@given(calendars, starts, durations, durations)
def test_add_is_monotonic(
    clock: BusinessCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    shorter, longer = sorted((d1, d2))
    assert start <= clock.add(start, shorter) <= clock.add(start, longer)


@FAST
@given(calendars, starts, durations)
def test_deadline_closes_working_time(
    clock: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    deadline = clock.add(start, duration)
    if duration:
        assert clock.working_time(deadline - TICK, deadline) == TICK
    else:
        assert deadline == start


@FAST
@given(calendars, starts, starts, starts)
def test_working_time_is_additive(
    clock: BusinessCalendar, first: datetime, second: datetime, third: datetime
) -> None:
    a, b, c = sorted((first, second, third))
    assert clock.working_time(a, b) + clock.working_time(b, c) == clock.working_time(a, c)


@FAST
@given(st.sampled_from(ZONES).map(ZoneInfo), starts, starts, durations)
def test_all_week_calendar_and_always_on_match_plain_arithmetic(
    tz: ZoneInfo, start: datetime, end: datetime, duration: timedelta
) -> None:
    clocks: list[WorkingClock] = [ALWAYS_ON, AlwaysOn(), BusinessCalendar(tz, ALL_WEEK)]
    for clock in clocks:
        assert clock.add(start, duration) == start + duration
        assert clock.working_time(start, end) == max(end - start, timedelta(0))


def _open_at(clock: BusinessCalendar, moment: datetime) -> bool:
    """Reference membership by wall clock; exact only where the zone has no DST."""
    wall = moment.astimezone(clock.timezone)
    if wall.date() in clock.holidays:
        return False
    minute = wall.hour * 60 + wall.minute
    return any(
        start.hour * 60 + start.minute <= minute < (end.hour * 60 + end.minute or 1440)
        for start, end in clock.weekly[wall.weekday()]
    )


@settings(max_examples=40, deadline=None)
@given(
    weeklies(),
    st.frozensets(st.dates(date(2026, 1, 1), date(2026, 1, 20)), max_size=5),
    st.integers(0, 20 * 24 * 60),
    st.integers(0, 2 * 24 * 60),
)
def test_working_time_matches_minute_by_minute_reference(
    weekly: Weekly, holidays: frozenset[date], offset: int, minutes: int
) -> None:
    clock = BusinessCalendar(ZoneInfo("UTC"), weekly, holidays)
    start = utc(2026, 1, 1) + timedelta(minutes=offset)
    ticks = [start + timedelta(minutes=m) for m in range(minutes)]
    expected = timedelta(minutes=sum(_open_at(clock, tick) for tick in ticks))
    assert clock.working_time(start, start + timedelta(minutes=minutes)) == expected
