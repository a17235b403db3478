"""`sla-processor replay` end to end: files in, output CloudEvents, errors and the report out."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.cli import main

from .factories import MIN, T0, H, envelope, opened_data, parse_time, rfc3339, to_bytes
from .strategies import Advance, Step, ticket_scripts

CONSOLE_SCRIPT = Path(sys.executable).with_name("sla-processor")

# Output ids are uuid5 over the output's logical identity (docs/decisions.md, item 22). Spelled
# out here rather than imported, so a change of scheme, which would break consumers'
# deduplication across a deploy, fails this file.
_OUTPUTS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:sla-processor:outputs")


def output_id(*parts: object) -> str:
    return str(uuid.uuid5(_OUTPUTS, "\x1f".join(map(str, parts))))


def escalation_id(ticket: str, cycle: int, severity: str, step: int) -> str:
    return output_id("sla.escalation", ticket, cycle, severity, step)


def breach_id(ticket: str) -> str:
    return output_id("sla.breach", ticket, "initial_response")


def update_due_id(ticket: str, cycle: int, due: datetime) -> str:
    return output_id("sla.update_due", ticket, cycle, rfc3339(due))


# -- running the command ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    out: bytes
    err: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


def cli(*argv: str | Path) -> Run:
    """`main` in process, with stdout and stderr captured as the console would see them."""
    out, err = io.BytesIO(), io.BytesIO()
    stdout, stderr = io.TextIOWrapper(out, "utf-8"), io.TextIOWrapper(err, "utf-8")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdout, sys.stderr = saved
        stdout.flush()
        stderr.flush()
    return Run(code, out.getvalue(), err.getvalue().decode())


class Events:
    """A JSONL file of input events, written line by line; ids are `<subject>/<n>`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[bytes] = []

    def add(
        self, type_: str, subject: str, at: datetime, data: dict[str, Any] | None = None
    ) -> Events:
        event_id = f"{subject}/{len(self.lines) + 1}"
        return self.raw(to_bytes(envelope(type_, subject, at, data, event_id=event_id)))

    def open(self, subject: str, at: datetime, severity: str, tier: str) -> Events:
        return self.add("ticket.opened", subject, at, opened_data(tier, severity))

    def raw(self, line: bytes) -> Events:
        self.lines.append(line)
        return self

    def write(self, lines: Sequence[bytes] | None = None) -> Path:
        self.path.write_bytes(
            b"".join(line + b"\n" for line in (self.lines if lines is None else lines))
        )
        return self.path


@pytest.fixture
def events(tmp_path: Path) -> Events:
    return Events(tmp_path / "events.jsonl")


def summary(run: Run) -> list[tuple[str, str, str, str]]:
    """(time, type, subject, id) of each output line."""
    return [(e["time"], e["type"], e["subject"], e["id"]) for e in run.events]


def at(hours: float) -> str:
    return rfc3339(T0 + timedelta(hours=hours))


# -- a scenario, line by line -----------------------------------------------------------------


def two_tickets(events: Events) -> Path:
    """An urgent ticket answered in time and resolved; a high one never answered."""
    return (
        events.open("T-1", T0, "urgent", "premium")  # 09:00
        .open("T-2", T0 + 30 * MIN, "high", "basic")  # 09:30, response due 11:30
        .add("ticket.responded", "T-1", T0 + 10 * MIN)
        .add("ticket.resolved", "T-1", T0 + 3 * H)  # 12:00, the last event
        .write()
    )


def test_a_scenario_gives_the_expected_output_lines(events: Events) -> None:
    run = cli("replay", two_tickets(events))
    assert run.code == 0, run.err
    assert run.err == ""
    assert summary(run) == [
        (at(0), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 1)),
        (at(0.5), "sla.escalation", "T-2", escalation_id("T-2", 1, "high", 1)),
        (at(2), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 2)),
        (at(2 + 1 / 6), "sla.update_due", "T-1", update_due_id("T-1", 1, T0 + 2 * H + 10 * MIN)),
        (at(2.5), "sla.escalation", "T-2", escalation_id("T-2", 1, "high", 2)),
        (at(2.5), "sla.breach", "T-2", breach_id("T-2")),
    ]
    first, *_, update, _, breach = run.events
    assert first["data"]["step"] == 1
    assert first["data"]["after"] == "PT0S"
    assert {"role": "tier2", "action": "route"} in first["data"]["actions"]
    assert update["data"]["cycle"] == 1
    assert update["data"]["due_at"] == at(2 + 1 / 6)
    assert update["data"]["frequency"] == "PT2H"
    assert breach["data"]["target"] == "initial_response"
    assert breach["data"]["due_at"] == at(2.5)
    for event in run.events:
        assert event["specversion"] == "1.0"
        assert event["source"] == "sla-processor"
        assert event["data"]["emitted_at"] == event["time"]  # the simulated clock


def test_output_is_byte_identical_run_to_run_and_through_the_console_script(
    events: Events,
) -> None:
    path = two_tickets(events)
    first, second = cli("replay", path), cli("replay", path)
    assert first.out == second.out
    assert cli("replay", path, "--progress").out == first.out
    assert first.out.count(b"\n") == 6
    console = subprocess.run(
        [CONSOLE_SCRIPT, "replay", path, "--no-progress"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert console.stdout == first.out


def test_outputs_are_sorted_by_time(events: Events) -> None:
    # Subjects appear in the opposite order of their deadlines.
    events.open("T-low", T0, "low", "basic")  # breach at 17:00
    events.open("T-normal", T0 + H, "normal", "premium")  # breach at 14:00
    events.open("T-urgent", T0 + 2 * H, "urgent", "select")  # steps at 11:00, 13:00, 15:00
    events.add("ticket.updated", "T-low", T0 + 9 * H)
    run = cli("replay", events.write())
    times = [parse_time(e["time"]) for e in run.events]
    assert times == sorted(times)
    assert len(times) == 6


# -- bad input --------------------------------------------------------------------------------


def test_bad_lines_are_reported_with_their_number_and_skipped(events: Events) -> None:
    events.open("T-1", T0, "urgent", "premium")  # line 1
    events.raw(b"this is not json")  # line 2
    events.raw(to_bytes(envelope("ticket.escalated", "T-1", T0, {}, event_id="x")))  # line 3
    events.raw(to_bytes(envelope("ticket.opened", "T-2", T0, {"customer_id": "C"}, event_id="y")))
    events.raw(b"")  # line 5: blank lines are skipped silently
    events.raw(b"[1, 2]")  # line 6
    events.add("ticket.responded", "T-1", T0 + 5 * MIN)  # line 7
    run = cli("replay", events.write())
    assert run.code == 0
    problems = run.err.splitlines()
    assert len(problems) == 4, run.err
    for number, reason in [
        (2, "malformed_json"),
        (3, "unknown_type"),
        (4, "invalid_data"),
        (6, "not_an_object"),
    ]:
        assert any(re.search(rf"\bline {number}\b.*{reason}", p) for p in problems), (
            number,
            run.err,
        )
    # The rest is processed: T-1 opened (step 1) and answered in time (no breach).
    assert summary(run) == [(at(0), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 1))]


def test_a_rejected_event_is_reported_with_its_line_number(events: Events) -> None:
    events.open("T-1", T0, "normal", "premium")
    events.add("ticket.responded", "T-9", T0 + MIN)  # line 2: never opened
    events.open("T-1", T0 + 2 * MIN, "urgent", "premium")  # line 3: opened twice
    events.add("ticket.closed", "T-1", T0 + 3 * MIN)
    events.add("ticket.reopened", "T-1", T0 + 4 * MIN)  # line 5: closed
    run = cli("replay", events.write())
    assert run.code == 0
    problems = run.err.splitlines()
    assert len(problems) == 3, run.err
    assert re.search(r"\bline 2\b.*unknown_ticket", problems[0])
    assert re.search(r"\bline 3\b.*already_opened", problems[1])
    assert re.search(r"\bline 5\b.*ticket_closed", problems[2])
    assert run.out == b""


# -- the horizon ------------------------------------------------------------------------------


def until_scenario(events: Events) -> Path:
    events.open("T-1", T0, "urgent", "premium")  # steps 09:00, 11:00, 13:00
    events.add("ticket.responded", "T-1", T0 + 10 * MIN)  # update due 11:10
    events.open("T-2", T0 + 30 * MIN, "normal", "select")  # response due 15:30
    events.add("ticket.severity_changed", "T-2", T0 + 2.5 * H, {"severity": "urgent"})  # 11:30
    events.add("ticket.resolved", "T-1", T0 + 3.5 * H)  # 12:30, the last event
    return events.write()


def test_default_until_is_the_last_event_and_later_timers_do_not_fire(events: Events) -> None:
    run = cli("replay", until_scenario(events))
    assert summary(run) == [
        (at(0), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 1)),
        (at(2), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 2)),
        (at(2 + 1 / 6), "sla.update_due", "T-1", update_due_id("T-1", 1, T0 + 2 * H + 10 * MIN)),
        # The change to urgent catches up T-2's steps 1 and 2 (09:30 + 2 h) at once ...
        (at(2.5), "sla.escalation", "T-2", escalation_id("T-2", 1, "urgent", 1)),
        (at(2.5), "sla.escalation", "T-2", escalation_id("T-2", 1, "urgent", 2)),
        # ... and moves its response deadline to min(15:30, 11:30 + 15 min).
        (at(2.75), "sla.breach", "T-2", breach_id("T-2")),
    ]
    # Not fired, being due after 12:30: T-2's step 3 (13:30).


def test_until_before_the_last_event_skips_later_events_and_timers(events: Events) -> None:
    run = cli("replay", until_scenario(events), "--until", at(2 + 5 / 60))  # 11:05
    assert run.code == 0, run.err
    assert summary(run) == [
        (at(0), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 1)),
        (at(2), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 2)),
    ]


def test_a_timer_due_exactly_at_until_fires(events: Events) -> None:
    run = cli("replay", until_scenario(events), "--until", at(2 + 1 / 6))  # 11:10
    assert [e["type"] for e in run.events][-1] == "sla.update_due"


def test_until_after_the_last_event_fires_later_timers(events: Events) -> None:
    run = cli("replay", until_scenario(events), "--until", "2026-03-02T15:00:00+01:00")
    # 14:00Z: T-2's step 3 (13:30), and no more of resolved T-1.
    assert summary(run)[-1] == (
        at(4.5),
        "sla.escalation",
        "T-2",
        escalation_id("T-2", 1, "urgent", 3),
    )
    assert len(run.events) == 7


@pytest.mark.parametrize("text", ["tomorrow", "2026-03-02T09:00:00"])
def test_until_must_be_an_rfc3339_instant(events: Events, text: str) -> None:
    run = cli("replay", until_scenario(events), "--until", text)
    assert run.code == 2
    assert "--until" in run.err


# -- policies ---------------------------------------------------------------------------------

DEFAULT_POLICY_TEXT = (
    resources.files("processor.sla").joinpath("default_policy.toml").read_text(encoding="utf-8")
)


def policy_file(tmp_path: Path, old: str, new: str) -> Path:
    assert old in DEFAULT_POLICY_TEXT, f"the default policy no longer reads {old!r}"
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY_TEXT.replace(old, new), encoding="utf-8")
    return path


def test_a_custom_policy_changes_the_deadlines(events: Events, tmp_path: Path) -> None:
    events.open("T-1", T0, "urgent", "premium")
    events.add("ticket.responded", "T-1", T0 + 10 * MIN)
    path = events.write()
    stricter = policy_file(
        tmp_path,
        'urgent = { premium = "PT15M", select = "PT15M", basic = "PT15M" }',
        'urgent = { premium = "PT5M", select = "PT15M", basic = "PT15M" }',
    )
    assert [e["type"] for e in cli("replay", path).events] == ["sla.escalation"]
    run = cli("replay", path, "--policy", stricter)
    assert run.code == 0, run.err
    assert summary(run) == [
        (at(0), "sla.escalation", "T-1", escalation_id("T-1", 1, "urgent", 1)),
        (at(5 / 60), "sla.breach", "T-1", breach_id("T-1")),
    ]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('urgent = "PT2H"', 'urgent = "soon"', "update_frequency.urgent"),
        (
            'high = { premium = "PT60M", select = "PT90M", basic = "PT120M" }',
            'high = { premium = "PT60M", select = "PT90M" }',
            "response_targets.high",
        ),
        ('{ role = "tier2", action = "route" }', '{ role = "tier4", action = "route" }', "role"),
        ("[response_targets]", "[response_targetz]", "response_target"),
    ],
)
def test_a_malformed_policy_exits_2_naming_the_field(
    events: Events, tmp_path: Path, old: str, new: str, field: str
) -> None:
    run = cli("replay", two_tickets(events), "--policy", policy_file(tmp_path, old, new))
    assert run.code == 2
    assert field in run.err
    assert run.out == b""


@pytest.mark.parametrize("content", [b"[[[not toml", b"\xff\xfe", None])
def test_an_unreadable_policy_exits_2(
    events: Events, tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "policy.toml"
    if content is not None:
        path.write_bytes(content)
    run = cli("replay", two_tickets(events), "--policy", path)
    assert run.code == 2
    assert str(path) in run.err


# -- the report -------------------------------------------------------------------------------


def report_scenario(events: Events) -> Path:
    events.open("A", T0, "urgent", "premium")  # target 15 min
    events.open("B", T0, "urgent", "basic")  # target 15 min
    events.open("C", T0, "high", "select")  # target 90 min
    events.open("D", T0, "high", "select")
    events.open("E", T0, "normal", "basic")  # target 8 h: still pending at 12:00
    events.add("ticket.responded", "A", T0 + 10 * MIN)  # met, 10 min
    events.add("ticket.responded", "B", T0 + 30 * MIN)  # breached at 09:15, 30 min
    events.add("ticket.responded", "C", T0 + 60 * MIN)  # met, 60 min
    events.add("ticket.responded", "D", T0 + 80 * MIN)  # met, 80 min
    events.add("ticket.resolved", "A", T0 + 3 * H)  # 12:00, the last event
    return events.write()


def table_rows(text: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose header starts with `first_header`."""
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith(f"| {first_header} |"):
            header = [cell.strip() for cell in line.strip("|").split("|")]
            next(lines)  # the |---| rule
            break
    else:
        raise AssertionError(f"no table headed {first_header!r} in:\n{text}")
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def test_the_report_gives_attainment_breaches_escalations_and_median_response(
    events: Events,
) -> None:
    run = cli("replay", report_scenario(events), "--report")
    assert run.code == 0, run.err
    text = run.out.decode()
    rows = {(r["severity"], r["tier"]): r for r in table_rows(text, "severity | tier")}
    expected = {
        ("urgent", "premium"): ("1", "1", "0", "100.0%", "PT10M"),
        ("urgent", "basic"): ("1", "0", "1", "0.0%", "PT30M"),
        ("high", "select"): ("2", "2", "0", "100.0%", "PT1H10M"),
        ("normal", "basic"): ("1", "0", "0", "n/a", "n/a"),
    }
    assert set(rows) == set(expected)
    for cell, values in expected.items():
        row = rows[cell]
        got = (row["tickets"], row["met"], row["breached"], row["attainment"])
        assert (*got, row["median first response"]) == values, cell
    # Steps 1 at 09:00 and 2 at 11:00 for both urgent and both high tickets; no step 3 by 12:00.
    steps = {
        (r["severity"], r["step"]): r["escalations"] for r in table_rows(text, "severity | step")
    }
    assert steps == {
        ("urgent", "1"): "2",
        ("urgent", "2"): "2",
        ("high", "1"): "2",
        ("high", "2"): "2",
    }


def test_the_report_counts_only_what_happened_by_until(events: Events) -> None:
    # By 09:50 D's response (10:20) has not been applied, nor is its target (10:30) due.
    run = cli("replay", report_scenario(events), "--report", "--until", at(50 / 60))
    rows = {(r["severity"], r["tier"]): r for r in table_rows(run.out.decode(), "severity | tier")}
    high = rows[("high", "select")]
    assert (high["tickets"], high["met"], high["breached"]) == ("2", "0", "0")
    assert (rows[("urgent", "basic")]["breached"], rows[("urgent", "basic")]["met"]) == ("1", "0")


# -- subject order ----------------------------------------------------------------------------


def regroup(lines: Sequence[bytes], order: Sequence[str]) -> list[bytes]:
    """The lines grouped by subject, subjects in `order`, each subject's lines in file order."""
    subjects = [json.loads(line)["subject"] for line in lines]
    return [line for s in order for line, owner in zip(lines, subjects, strict=True) if owner == s]


def test_interleaved_subjects_give_the_same_output_as_grouped_ones(events: Events) -> None:
    until_scenario(events)  # T-1, T-1, T-2, T-2, T-1: no two subjects emit at one instant
    lines = list(events.lines)
    interleaved = cli("replay", events.write())
    for order in (["T-1", "T-2"], ["T-2", "T-1"]):
        grouped = regroup(lines, order)
        assert grouped != lines
        assert cli("replay", events.write(grouped)).out == interleaved.out, order


def shuffles(groups: list[list[bytes]]) -> st.SearchStrategy[list[bytes]]:
    """Every interleaving of the groups that keeps each group's own order."""
    total = sum(map(len, groups))
    return st.lists(st.sampled_from(range(len(groups))), min_size=total, max_size=total).map(
        lambda picks: _interleave(groups, picks)
    )


def _interleave(groups: list[list[bytes]], picks: list[int]) -> list[bytes]:
    queues = [list(g) for g in groups]
    merged: list[bytes] = []
    for pick in picks:
        live = [q for q in queues if q]
        merged.append(live[pick % len(live)].pop(0))
    return merged


def _jsonl(script: Sequence[Step]) -> list[bytes]:
    return [s.model_dump_json().encode() for s in script if not isinstance(s, Advance)]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.tuples(
        ticket_scripts(subject="T-1", max_steps=12, late=False),
        ticket_scripts(subject="T-2", max_steps=12, late=False),
        ticket_scripts(subject="T-3", max_steps=12, late=False),
    ).map(lambda scripts: [_jsonl(s) for s in scripts]),
    data=st.data(),
)
def test_any_interleaving_of_subjects_gives_the_same_outputs(
    groups: list[list[bytes]], data: st.DataObject
) -> None:
    mixed = data.draw(shuffles(groups), label="interleaving")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.jsonl"
        grouped = cli("replay", Events(path).write([line for g in groups for line in g]))
        interleaved = cli("replay", Events(path).write(mixed))
    assert grouped.code == interleaved.code == 0
    assert sorted(interleaved.out.splitlines()) == sorted(grouped.out.splitlines())
    times = [parse_time(e["time"]) for e in interleaved.events]
    assert times == sorted(times)
    assert len(interleaved.err.splitlines()) == len(grouped.err.splitlines())


# -- arrival order and timelines (decisions 37 and 40) ------------------------------------------

EXTENDED_POLICY = Path(__file__).parents[2] / "examples" / "policies" / "extended.toml"


def test_arrival_order_replays_a_late_response_and_its_retraction(events: Events) -> None:
    late = envelope("ticket.responded", "T-1", T0 + 14 * MIN, event_id="T-1/late")
    events.open("T-1", T0, "urgent", "premium")
    events.raw(json.dumps({"arrived_at": rfc3339(T0 + 20 * MIN), "event": late}).encode())
    run = cli("replay", "--arrival", "--policy", EXTENDED_POLICY, events.write())
    assert run.code == 0, run.err
    found = [(e["type"], e["time"], e["data"]["emitted_at"]) for e in run.events]
    assert ("sla.breach", at(0.25), at(0.25)) in found
    retraction = next(e for e in run.events if e["type"] == "sla.retraction")
    assert retraction["data"]["retracted_id"] == breach_id("T-1")
    assert retraction["data"]["emitted_at"] == rfc3339(T0 + 20 * MIN)  # when the event arrived
    emitted = [e["data"]["emitted_at"] for e in run.events]
    assert emitted == sorted(emitted)  # in emission order
    # In time order (no arrival times) nothing is late: no breach, nothing retracted.
    timely = cli("replay", "--policy", EXTENDED_POLICY, events.write(
        [events.lines[0], json.dumps(late).encode()]))  # fmt: skip
    assert {e["type"] for e in timely.events}.isdisjoint({"sla.breach", "sla.retraction"})


def test_arrival_lines_that_are_not_events_are_reported_and_skipped(events: Events) -> None:
    events.open("T-1", T0, "urgent", "premium")
    events.raw(b'{"arrived_at": "yesterday", "event": {}}')
    events.raw(b"[1, 2]")
    run = cli("replay", "--arrival", events.write())
    assert run.code == 0
    assert "line 2: invalid_envelope" in run.err
    assert "line 3: not_an_object" in run.err
    assert [e["type"] for e in run.events] == ["sla.escalation"]


def test_the_timeline_of_a_ticket_and_of_one_not_in_the_input(events: Events) -> None:
    path = two_tickets(events)
    run = cli("replay", "--timeline", "T-2", path)
    assert run.code == 0, run.err
    answer = json.loads(run.out)
    assert answer["ticket_id"] == "T-2"
    assert [e["type"] for e in answer["events"]] == ["ticket.opened"]
    assert [o["type"] for o in answer["outputs"]] == [
        "sla.escalation",
        "sla.escalation",
        "sla.breach",
    ]
    assert answer["as_of"] == at(3)
    missing = cli("replay", "--timeline", "T-9", path)
    assert missing.code == 1
    assert "no ticket 'T-9'" in missing.err
