"""Holiday calendars in iCalendar text: hand-written files, a GOV.UK sample, and a round trip."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.sla.exceptions import SlaError
from processor.sla.ical import MAX_BYTES, IcalError, holidays_from_ical

SAMPLES = Path(__file__).parent / "samples"
Y2026 = (date(2026, 1, 1), date(2026, 12, 31))


def ics(*events: str, newline: str = "\r\n") -> str:
    """A calendar of these events, each given as its lines between BEGIN and END:VEVENT."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *event.strip().splitlines(), "END:VEVENT"]
    return newline.join([*lines, "END:VCALENDAR", ""])


def read(text: str, first: date = Y2026[0], last: date = Y2026[1]) -> set[date]:
    return set(holidays_from_ical(text, source="test.ics", start=first, end=last))


def error(text: str, first: date = Y2026[0], last: date = Y2026[1]) -> str:
    with pytest.raises(IcalError) as caught:
        read(text, first, last)
    return str(caught.value)


def cases(table: list[tuple[Any, ...]]) -> list[Any]:
    """A table's rows as pytest parameters, each named by its first column."""
    return [pytest.param(*rest, id=name) for name, *rest in table]


def days(first: date, count: int) -> set[date]:
    return {first + timedelta(days=n) for n in range(count)}


def last_weekday(year: int, month: int, weekday: int) -> date:
    """From the standard library's month table, not from the code under test."""
    return date(year, month, max(week[weekday] for week in calendar.monthcalendar(year, month)))


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    days_of = [week[weekday] for week in calendar.monthcalendar(year, month) if week[weekday]]
    return date(year, month, days_of[n - 1])


XMAS = date(2026, 12, 25)


# -- all-day events ----------------------------------------------------------------------------

ALL_DAY = [
    ("one day", "DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261226", {XMAS}),
    ("two days, DTEND exclusive", "DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261227", days(XMAS, 2)),
    ("no DTEND", "DTSTART;VALUE=DATE:20261225", {XMAS}),
    ("DTEND equal to DTSTART", "DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261225", {XMAS}),
    ("DURATION P1D", "DTSTART;VALUE=DATE:20261225\nDURATION:P1D", {XMAS}),
    ("DURATION P2D", "DTSTART;VALUE=DATE:20261225\nDURATION:P2D", days(XMAS, 2)),
    ("DURATION P1W", "DTSTART;VALUE=DATE:20261221\nDURATION:P1W", days(date(2026, 12, 21), 7)),
    ("a date without VALUE=DATE", "DTSTART:20261225", {XMAS}),
    ("lower-case names", "dtstart;value=date:20261225\ndtend;Value=Date:20261227", days(XMAS, 2)),
    ("clipped to the range", "DTSTART;VALUE=DATE:20261230\nDTEND;VALUE=DATE:20270103", days(date(2026, 12, 30), 2)),
    ("before the range", "DTSTART;VALUE=DATE:20251225", set()),
    ("TRANSP is ignored", "DTSTART;VALUE=DATE:20261225\nTRANSP:TRANSPARENT", {XMAS}),
    ("cancelled", "DTSTART;VALUE=DATE:20261225\nSTATUS:CANCELLED", set()),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), cases(ALL_DAY))
def test_all_day_events(event: str, expected: set[date]) -> None:
    assert read(ics(event)) == expected


def test_crlf_lf_and_folded_lines_read_alike() -> None:
    event = "UID:a@example.org\nDTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261227"
    crlf, lf = ics(event), ics(event, newline="\n")
    folded = crlf.replace("DTSTART;VALUE=DATE:2026", "DTSTA\r\n RT;VALUE=DA\r\n\tTE:2026")
    folded = folded.replace("BEGIN:VEVENT", "BEG\r\n IN:VEV\n ENT")
    assert "DTSTA\r\n RT" in folded
    assert read(crlf) == read(lf) == read(folded) == days(XMAS, 2)


def test_parameters_may_be_quoted_and_hold_separators() -> None:
    event = 'DTSTART;X-NOTE="a;b:c,d";VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261226'
    assert read(ics(event)) == {XMAS}


def test_only_vevents_directly_in_the_calendar_count() -> None:
    timezone = "\r\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Europe/London",
            "BEGIN:STANDARD",
            "DTSTART:19701025T020000",
            "RRULE:FREQ=MONTHLY;BYDAY=-1SU",
            "END:STANDARD",
            "END:VTIMEZONE",
            "BEGIN:VTODO",
            "DTSTART;VALUE=DATE:20260101",
            "END:VTODO",
        ]
    )
    alarm = "DTSTART;VALUE=DATE:20261225\nBEGIN:VALARM\nTRIGGER:-P1D\nDTSTART:20260601\nEND:VALARM"
    text = ics(alarm).replace("BEGIN:VEVENT", timezone + "\r\nBEGIN:VEVENT", 1)
    assert read(text) == {XMAS}


def test_the_gov_uk_sample() -> None:
    text = (SAMPLES / "uk-bank-holidays-sample.ics").read_bytes().decode("utf-8")
    assert "\r\n" in text  # as GOV.UK publishes it
    expected = {
        date(2026, 1, 1),
        date(2026, 4, 3),
        date(2026, 4, 6),
        date(2026, 5, 4),
        date(2026, 5, 25),
        date(2026, 8, 31),
        date(2026, 12, 25),
        date(2026, 12, 28),
    }
    assert read(text) == expected
    assert len(read(text, date(2025, 1, 1), date(2027, 12, 31))) == len(expected) + 2


# -- timed events ------------------------------------------------------------------------------

TIMED = [
    ("TZID, just before midnight", "DTSTART;TZID=America/New_York:20261224T233000", {date(2026, 12, 24)}),
    ("TZID, at midnight, for a day", "DTSTART;TZID=Europe/London:20261225T000000\nDTEND;TZID=Europe/London:20261226T000000", {XMAS}),
    ("TZID, across midnight", "DTSTART;TZID=Europe/London:20261224T230000\nDTEND;TZID=Europe/London:20261225T010000", days(date(2026, 12, 24), 2)),
    ("UTC, late in the day", "DTSTART:20261225T235959Z\nDURATION:PT1S", {XMAS}),
    ("floating, two and a half days", "DTSTART:20261224T120000\nDTEND:20261226T235959", days(date(2026, 12, 24), 3)),
    ("PT24H from midnight", "DTSTART;TZID=Europe/London:20261225T000000\nDURATION:PT24H", {XMAS}),
    ("P1DT1H from 23:00", "DTSTART:20261224T230000\nDURATION:P1DT1H", days(date(2026, 12, 24), 2)),
    ("Outlook's zone names", 'DTSTART;TZID="W. Europe Standard Time":20261225T000000', {XMAS}),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), cases(TIMED))
def test_a_timed_event_marks_the_days_it_is_written_on(event: str, expected: set[date]) -> None:
    assert read(ics(event)) == expected


# -- recurrence --------------------------------------------------------------------------------

FIVE_YEARS = (date(2026, 1, 1), date(2030, 12, 31))


def christmas(*years: int) -> set[date]:
    return {date(year, 12, 25) for year in years}


def test_yearly_with_an_exdate() -> None:
    event = "DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY\nEXDATE;VALUE=DATE:20281225"
    assert read(ics(event), *FIVE_YEARS) == christmas(2026, 2027, 2029, 2030)


def test_exdates_as_lists_date_times_and_several_lines() -> None:
    event = "\n".join(
        [
            "DTSTART;TZID=Europe/London:20261225T000000",
            "RRULE:FREQ=YEARLY",
            "EXDATE;TZID=Europe/London:20271225T000000,20291225T000000",
            "EXDATE:20301225T000000",
        ]
    )
    assert read(ics(event), *FIVE_YEARS) == christmas(2026, 2028)


def test_us_memorial_day_is_the_last_monday_of_may() -> None:
    event = "DTSTART;VALUE=DATE:20260525\nRRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO"
    expected = {last_weekday(year, 5, calendar.MONDAY) for year in (2026, 2027, 2028)}
    assert expected == {date(2026, 5, 25), date(2027, 5, 31), date(2028, 5, 29)}
    assert read(ics(event), date(2026, 1, 1), date(2028, 12, 31)) == expected


def test_nth_weekdays_and_weekdays_narrowing_month_days() -> None:
    thanksgiving = "DTSTART;VALUE=DATE:20261126\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH"
    # US Election Day, RFC 5545's example: the Tuesday after the first Monday of November.
    election = "DTSTART;VALUE=DATE:20261103\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8"
    years = range(2026, 2031)
    assert read(ics(thanksgiving), *FIVE_YEARS) == {
        nth_weekday(year, 11, calendar.THURSDAY, 4) for year in years
    }
    assert read(ics(election), *FIVE_YEARS) == {
        nth_weekday(year, 11, calendar.MONDAY, 1) + timedelta(days=1) for year in years
    }


RULES = [
    ("COUNT counts DTSTART", "RRULE:FREQ=YEARLY;COUNT=3", christmas(2026, 2027, 2028)),
    ("UNTIL as a date, inclusive", "RRULE:FREQ=YEARLY;UNTIL=20281225", christmas(2026, 2027, 2028)),
    ("UNTIL as a date-time", "RRULE:FREQ=YEARLY;UNTIL=20291224T235959Z", christmas(2026, 2027, 2028)),
    ("INTERVAL", "RRULE:FREQ=YEARLY;INTERVAL=2", christmas(2026, 2028, 2030)),
    ("BYMONTH and BYMONTHDAY", "RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25,26;COUNT=4", christmas(2026, 2027) | {date(2026, 12, 26), date(2027, 12, 26)}),
    ("BYMONTHDAY from the end", "RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=-1;UNTIL=20271231", christmas(2026) | {date(2026, 12, 31), date(2027, 12, 31)}),
    ("WKST is harmless", "RRULE:freq=yearly;wkst=SU;count=2", christmas(2026, 2027)),
    ("RDATE adds a day", "RRULE:FREQ=YEARLY;COUNT=1\nRDATE;VALUE=DATE:20270102,20280103", christmas(2026) | {date(2027, 1, 2), date(2028, 1, 3)}),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "expected"), cases(RULES))
def test_yearly_rules(rule: str, expected: set[date]) -> None:
    assert read(ics(f"DTSTART;VALUE=DATE:20261225\n{rule}"), *FIVE_YEARS) == expected


def test_february_29_recurs_in_leap_years_only() -> None:
    event = "DTSTART;VALUE=DATE:20240229\nRRULE:FREQ=YEARLY;COUNT=3"
    assert read(ics(event), date(2024, 1, 1), date(2040, 12, 31)) == {
        date(2024, 2, 29),
        date(2028, 2, 29),
        date(2032, 2, 29),
    }


def test_an_old_rule_is_read_from_its_start() -> None:
    event = "DTSTART;VALUE=DATE:19001225\nRRULE:FREQ=YEARLY;INTERVAL=3"
    assert read(ics(event), *FIVE_YEARS) == christmas(2026, 2029)


def test_a_multi_day_occurrence_reaches_into_the_range() -> None:
    event = "DTSTART;VALUE=DATE:20241231\nDTEND;VALUE=DATE:20250103\nRRULE:FREQ=YEARLY"
    assert read(ics(event)) == {date(2026, 1, 1), date(2026, 1, 2), date(2026, 12, 31)}


def test_a_moved_or_cancelled_occurrence_replaces_the_rule_s() -> None:
    master = "UID:xmas@example.org\nDTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY"
    moved = "UID:xmas@example.org\nRECURRENCE-ID;VALUE=DATE:20271225\nDTSTART;VALUE=DATE:20271227"
    cancelled = "UID:xmas@example.org\nRECURRENCE-ID;VALUE=DATE:20281225\nDTSTART;VALUE=DATE:20281225\nSTATUS:CANCELLED"
    assert read(ics(master, moved, cancelled), *FIVE_YEARS) == christmas(2026, 2029, 2030) | {
        date(2027, 12, 27)
    }


# -- errors ------------------------------------------------------------------------------------

SECRET = "SUMMARY:Staff party at the secret venue\nDESCRIPTION:Do not tell"

UNSUPPORTED = [
    ("monthly", "RRULE:FREQ=MONTHLY;BYMONTHDAY=1", "FREQ=MONTHLY"),
    ("weekly", "RRULE:FREQ=WEEKLY", "FREQ=WEEKLY"),
    ("daily", "RRULE:FREQ=DAILY;COUNT=3", "FREQ=DAILY"),
    ("BYSETPOS", "RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=MO;BYSETPOS=-1", "BYSETPOS"),
    ("BYWEEKNO", "RRULE:FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO"),
    ("BYYEARDAY", "RRULE:FREQ=YEARLY;BYYEARDAY=100", "BYYEARDAY"),
    ("BYDAY over the year", "RRULE:FREQ=YEARLY;BYDAY=20MO", "BYDAY without BYMONTH"),
    ("no FREQ", "RRULE:COUNT=3", "no FREQ"),
    ("COUNT and UNTIL", "RRULE:FREQ=YEARLY;COUNT=2;UNTIL=20281225", "COUNT and UNTIL"),
    ("a sixth Monday", "RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=6MO", "6MO"),
    ("two RRULEs", "RRULE:FREQ=YEARLY\nRRULE:FREQ=YEARLY;BYMONTH=1", "one RRULE"),
    ("EXRULE", "EXRULE:FREQ=YEARLY;COUNT=1", "EXRULE"),
]


@pytest.mark.parametrize(("rule", "named"), cases(UNSUPPORTED))
def test_an_unsupported_rule_is_refused_by_name(rule: str, named: str) -> None:
    event = f"UID:rule-1@example.org\nDTSTART;VALUE=DATE:20261225\n{SECRET}\n{rule}"
    message = error(ics(event))
    rule_line = 9 + (rule.count("\n") if rule.startswith("RRULE:FREQ=YEARLY\n") else 0)
    assert message.startswith(f"test.ics: line {rule_line}: event UID 'rule-1@example.org'")
    assert named in message
    assert "secret" not in message.lower()
    assert "tell" not in message.lower()


def test_an_unsupported_rule_of_an_event_without_uid_names_its_line() -> None:
    message = error(ics(f"DTSTART;VALUE=DATE:20261225\n{SECRET}\nRRULE:FREQ=MONTHLY"))
    assert message.startswith("test.ics: line 8: event of line 4: RRULE 'FREQ=MONTHLY'")


MALFORMED = [
    ("no VCALENDAR", "BEGIN:VEVENT\r\nDTSTART:20261225\r\nEND:VEVENT\r\n", 1, "no BEGIN:VCALENDAR"),
    ("empty", "", 1, "no BEGIN:VCALENDAR"),
    ("an HTML page", "<!DOCTYPE html>\n<html></html>\n", 1, "no BEGIN:VCALENDAR"),
    ("unterminated event", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261225\r\nEND:VCALENDAR\r\n", 4, "END:'VCALENDAR' where BEGIN:VEVENT of line 2 is open"),
    ("unterminated calendar", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261225\r\nEND:VEVENT\r\n", 1, "BEGIN:VCALENDAR is never ended"),
    ("a property after the calendar", ics("DTSTART:20261225") + "X-JUNK:1\r\n", 8, "outside BEGIN:VCALENDAR"),
    ("not a content line", ics("DTSTART:20261225\nSUMMARY with no colon"), 6, "not a content line"),
    ("a fold with nothing before", " BEGIN:VCALENDAR\r\n", 1, "continues no line"),
    ("a month 13", ics("UID:u\nDTSTART;VALUE=DATE:20261325"), 6, "DTSTART '20261325' is no real date"),
    ("a 30 February", ics("DTSTART;VALUE=DATE:20260230"), 5, "no real date"),
    ("a time in a DATE", ics("DTSTART;VALUE=DATE:20261225T000000"), 5, "is not a date (YYYYMMDD)"),
    ("hour 24", ics("DTSTART:20261225T240000"), 5, "no real date or time"),
    ("a bad DTEND", ics("DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:2026-12-26"), 6, "DTEND '2026-12-26' is not a date"),
    ("a bad EXDATE", ics("DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY\nEXDATE:20271225,tomorrow"), 7, "EXDATE 'tomorrow'"),
    ("a bad UNTIL", ics("DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY;UNTIL=2028"), 6, "UNTIL '2028'"),
    ("a bad INTERVAL", ics("DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY;INTERVAL=0"), 6, "INTERVAL '0'"),
    ("an RDATE period", ics("DTSTART;VALUE=DATE:20261225\nRDATE;VALUE=PERIOD:20270101T000000Z/P1D"), 6, "VALUE='PERIOD'"),
    ("no DTSTART", ics("UID:x@example.org\nDTEND;VALUE=DATE:20261225"), 4, "event UID 'x@example.org' has no DTSTART"),
    ("DTEND before DTSTART", ics("DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261224"), 6, "ends before it starts"),
    ("DTEND and DURATION", ics("DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261226\nDURATION:P1D"), 7, "both DTEND and DURATION"),
    ("a negative DURATION", ics("DTSTART;VALUE=DATE:20261225\nDURATION:-P1D"), 6, "DURATION '-P1D'"),
    ("two DTSTARTs in one", ics("DTSTART;VALUE=DATE:20261225,20261226"), 5, "holds 2 values"),
    ("a future-range override", ics("UID:u\nRECURRENCE-ID;RANGE=THISANDFUTURE:20271225T000000\nDTSTART:20271226T000000"), 6, "THISANDFUTURE"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "what"), cases(MALFORMED))
def test_malformed_input_is_refused_with_its_line(text: str, line: int, what: str) -> None:
    message = error(text)
    assert message.startswith(f"test.ics: line {line}: ")
    assert what in message


def test_the_line_of_a_folded_property_is_where_it_starts() -> None:
    text = ics("UID:u\nDTSTART;VALUE=DA\n TE:20261\n 3 25")
    assert error(text).startswith("test.ics: line 6: DTSTART '202613 25'")


def test_the_error_is_a_value_error_of_the_core() -> None:
    assert issubclass(IcalError, ValueError)
    assert issubclass(IcalError, SlaError)


def test_an_input_over_4_mib_is_refused_before_it_is_read() -> None:
    padding = "X-PAD:" + "a" * 70 + "\r\n"
    text = ics("DTSTART;VALUE=DATE:20261225").replace(
        "BEGIN:VEVENT", padding * (MAX_BYTES // len(padding) + 1) + "BEGIN:VEVENT"
    )
    assert re.fullmatch(r"test\.ics: [0-9,]+ bytes, over the limit of 4,194,304", error(text))
    # Counted in bytes, not characters: 4 MiB of two-byte characters is over too.
    assert "bytes, over" in error("BEGIN:VCALENDAR\r\nX-PAD:" + "é" * (MAX_BYTES // 2) + "\r\n")


def test_a_rule_expanding_too_far_is_refused() -> None:
    every_day = "RRULE:FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYDAY=MO,TU,WE,TH,FR,SA,SU"
    message = error(
        ics(f"DTSTART;VALUE=DATE:17000101\n{every_day}"), date(1700, 1, 1), date(2100, 1, 1)
    )
    assert message == "test.ics: line 6: the calendar expands to more than 100,000 dates"


def test_a_long_event_over_a_long_range_is_refused() -> None:
    event = "DTSTART;VALUE=DATE:15000101\nDTEND;VALUE=DATE:21000101"
    assert "more than 100,000 dates" in error(ics(event), date(1500, 1, 1), date(2100, 1, 1))


def test_an_empty_range_is_empty() -> None:
    assert read(ics("DTSTART;VALUE=DATE:20261225"), date(2027, 1, 1), date(2026, 1, 1)) == set()


# -- a round trip ------------------------------------------------------------------------------


@st.composite
def folded(draw: st.DrawFn, line: str) -> str:
    """The line folded at random places, each fold a line break then a space or a tab."""
    cuts = sorted(draw(st.sets(st.integers(1, max(len(line) - 1, 1)), max_size=4)))
    pieces = [line[a:b] for a, b in zip([0, *cuts], [*cuts, len(line)], strict=True)]
    folds = [draw(st.sampled_from(["\r\n ", "\r\n\t"])) for _ in pieces[1:]]
    return pieces[0] + "".join(f + p for f, p in zip(folds, pieces[1:], strict=True))


@st.composite
def calendars(draw: st.DrawFn, holidays: frozenset[date]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for n, day in enumerate(sorted(holidays)):
        lines += [
            "BEGIN:VEVENT",
            f"UID:{n}@example.org",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
            "SUMMARY:A holiday with a long enough name to be folded by a generator",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    text = "\r\n".join(draw(folded(line)) for line in lines) + "\r\n"
    return text if draw(st.booleans()) else text.replace("\r\n", "\n")


DATES = st.dates(date(1900, 1, 1), date(2100, 12, 30))


@given(st.data(), st.frozensets(DATES, max_size=25), DATES, DATES)
def test_one_all_day_event_per_date_reads_back_as_those_dates(
    data: st.DataObject, holidays: frozenset[date], first: date, last: date
) -> None:
    text = data.draw(calendars(holidays))
    assert read(text, date(1900, 1, 1), date(2100, 12, 31)) == holidays
    assert read(text, first, last) == {day for day in holidays if first <= day <= last}
