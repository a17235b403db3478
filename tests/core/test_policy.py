"""Loading and validating policies: the packaged default, malformed documents, a custom calendar."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processor.sla.policy import Policy, PolicyError, load_policy, parse_policy

from .factories import DAY, MIN, SEC, H, Subject, breach_times

LONDON = ZoneInfo("Europe/London")
DEFAULT_TEXT = resources.files("processor.sla").joinpath("default_policy.toml").read_text()
OFFICE_CALENDAR = """
[calendars.office]
timezone = "Europe/London"

[calendars.office.weekly]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]

[clocks]
normal = "office"
"""

Document = dict[str, Any]


def test_default_policy_loads() -> None:
    policy = load_policy()
    assert isinstance(policy, Policy)
    assert load_policy(None) == policy


def test_default_policy_document_is_valid_as_written() -> None:
    assert isinstance(parse_policy(tomllib.loads(DEFAULT_TEXT), "default"), Policy)


# -- malformed documents -----------------------------------------------------------------------


def _set(*path: Any, value: Any) -> Callable[[Document], None]:
    def mutate(doc: Document) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(*path: Any) -> Callable[[Document], None]:
    def mutate(doc: Document) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _swap_urgent_steps(doc: Document) -> None:
    ladder = doc["escalation"]["urgent"]
    ladder[1], ladder[2] = ladder[2], ladder[1]


def _office(
    timezone: str, weekly: dict[str, list[str]] | None = None
) -> Callable[[Document], None]:
    def mutate(doc: Document) -> None:
        doc["calendars"] = {
            "office": {"timezone": timezone, "weekly": weekly or {"mon": ["09:00-17:00"]}}
        }
        doc["clocks"] = {"normal": "office"}

    return mutate


MALFORMED: list[tuple[str, Callable[[Document], None], tuple[str, ...]]] = [
    ("missing-tier", _delete("response_targets", "high", "basic"), ("response_targets", "basic")),
    ("missing-severity", _delete("response_targets", "low"), ("response_targets", "low")),
    (
        "negative-target",
        _set("response_targets", "normal", "premium", value="-PT4H"),
        ("response_targets", "normal", "premium"),
    ),
    (
        "unparsable-target",
        _set("response_targets", "normal", "premium", value="four hours"),
        ("response_targets", "normal", "premium"),
    ),
    (
        "negative-update-frequency",
        _set("update_frequency", "urgent", value="-PT2H"),
        ("update_frequency", "urgent"),
    ),
    (
        "unparsable-update-frequency",
        _set("update_frequency", "high", value="daily"),
        ("update_frequency", "high"),
    ),
    (
        "negative-step-after",
        _set("escalation", "urgent", 1, "after", value="-PT2H"),
        ("escalation", "urgent", "after"),
    ),
    (
        "negative-minimum-notice",
        _set("maintenance", "minimum_notice", value="-P5D"),
        ("maintenance", "minimum_notice"),
    ),
    (
        "unparsable-reminder-offset",
        _set("maintenance", "reminder_offsets", value=["soon"]),
        ("maintenance", "reminder_offsets"),
    ),
    ("steps-out-of-order", _swap_urgent_steps, ("escalation", "urgent")),
    (
        "step-after-goes-backwards",
        _set("escalation", "high", 2, "after", value="PT1H"),
        ("escalation", "high"),
    ),
    (
        "unknown-role",
        _set("escalation", "high", 0, "actions", 0, "role", value="ceo"),
        ("escalation", "high", "role"),
    ),
    (
        "unknown-action",
        _set("escalation", "urgent", 2, "actions", 0, "action", value="escalate"),
        ("escalation", "urgent", "action"),
    ),
    (
        "clock-names-missing-calendar",
        _set("clocks", value={"normal": "office"}),
        ("clocks", "normal"),
    ),
    ("unknown-time-zone", _office("Mars/Olympus_Mons"), ("calendars", "office")),
    (
        "impossible-office-hours",
        _office("Europe/London", {"mon": ["17:00-09:00"]}),
        ("calendars", "office"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "fragments"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_policy_is_refused_naming_the_field(
    mutate: Callable[[Document], None], fragments: tuple[str, ...]
) -> None:
    document = copy.deepcopy(tomllib.loads(DEFAULT_TEXT))
    mutate(document)
    with pytest.raises(PolicyError) as info:
        parse_policy(document, "custom.toml")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not named in {message!r}"


FILE_EDITS = [
    ("missing-tier", ', basic = "PT120M"', "", ("response_targets", "basic")),
    ("negative-target", 'premium = "PT4H"', 'premium = "-PT4H"', ("response_targets", "normal")),
    ("unparsable-target", 'premium = "PT4H"', 'premium = "4 hours"', ("response_targets",)),
    ("unknown-role", 'role = "tier1"', 'role = "ceo"', ("escalation", "high", "role")),
]


@pytest.mark.parametrize(
    ("old", "new", "fragments"), [e[1:] for e in FILE_EDITS], ids=[e[0] for e in FILE_EDITS]
)
def test_malformed_policy_file_is_refused(
    old: str, new: str, fragments: tuple[str, ...], tmp_path: Path
) -> None:
    assert DEFAULT_TEXT.count(old) == 1
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_TEXT.replace(old, new))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    for fragment in (*fragments, "policy.toml"):
        assert fragment in message, f"{fragment!r} not named in {message!r}"


@pytest.mark.parametrize(
    "content",
    [
        "this is = not [toml",
        "response_targets = ",
        "[response_targets]\nurgent = { premium = PT15M }\n",
        "\x00\x01binary",
    ],
    ids=["garbage", "dangling", "unquoted-duration", "binary"],
)
def test_non_toml_file_is_refused(content: str, tmp_path: Path) -> None:
    path = tmp_path / "broken-policy.toml"
    path.write_text(content)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert "broken-policy.toml" in str(info.value)


def test_undecodable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[response_targets]\n# caf\xe9\n")
    with pytest.raises(PolicyError, match=r"latin1\.toml"):
        load_policy(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyError, match=r"absent\.toml"):
        load_policy(path)


def test_default_text_written_to_a_file_loads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_TEXT)
    assert load_policy(path) == load_policy()


# -- a custom policy with a business-hours calendar --------------------------------------------


@pytest.fixture
def office_policy(tmp_path: Path) -> Policy:
    path = tmp_path / "office.toml"
    path.write_text(DEFAULT_TEXT + OFFICE_CALENDAR)
    return load_policy(path)


def london(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("opened", "tier", "due"),
    [
        # Friday 16:00 BST, 4 h: 1 h on Friday, 3 h on Monday from 09:00
        (london(2026, 6, 5, 16), "premium", london(2026, 6, 8, 12)),
        (london(2026, 6, 5, 16), "select", london(2026, 6, 8, 14)),
        (london(2026, 6, 5, 16), "basic", london(2026, 6, 8, 16)),
        # the same in winter (GMT)
        (london(2026, 1, 9, 16), "premium", london(2026, 1, 12, 12)),
        # opened on a Saturday: the clock starts Monday 09:00
        (london(2026, 6, 6, 11), "premium", london(2026, 6, 8, 13)),
        # opened before opening hours
        (london(2026, 6, 9, 7, 30), "premium", london(2026, 6, 9, 13)),
        # within one working day
        (london(2026, 6, 9, 10), "premium", london(2026, 6, 9, 14)),
        # opened after hours on Thursday, 6 h: Friday 09:00-15:00
        (london(2026, 6, 11, 18), "select", london(2026, 6, 12, 15)),
    ],
    ids=[
        "fri-premium",
        "fri-select",
        "fri-basic",
        "fri-winter",
        "saturday",
        "early",
        "same-day",
        "thu-evening",
    ],
)
def test_business_hours_calendar_moves_the_normal_deadline(
    office_policy: Policy, opened: datetime, tier: str, due: datetime
) -> None:
    ticket = Subject(policy=office_policy)
    ticket.open(opened, "normal", tier)
    ticket.advance(due - SEC)
    assert breach_times(ticket.outputs) == []
    ticket.advance(due + DAY)
    assert breach_times(ticket.outputs) == [due]


@pytest.mark.parametrize(
    ("severity", "target"), [("urgent", 15 * MIN), ("high", 60 * MIN), ("low", 8 * H)]
)
def test_severities_without_a_calendar_keep_running_24x7(
    office_policy: Policy, severity: str, target: timedelta
) -> None:
    opened = london(2026, 6, 5, 16)
    ticket = Subject(policy=office_policy)
    ticket.open(opened, severity, "premium")
    ticket.advance(opened + 3 * DAY)
    assert breach_times(ticket.outputs) == [opened + target]


def test_the_default_normal_deadline_ignores_office_hours() -> None:
    opened = london(2026, 6, 5, 16)
    ticket = Subject()
    ticket.open(opened, "normal", "premium")
    ticket.advance(opened + 3 * DAY)
    assert breach_times(ticket.outputs) == [opened + 4 * H]
