"""The random histories generator: reproducible, complete, in order, and accepted by the engine."""

from __future__ import annotations

import contextlib
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from processor.replay import read_events, replay
from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.policy import Policy, load_policy
from schemas.cloudevents import (
    MAINTENANCE_TYPES,
    TICKET_TYPES,
    InputEvent,
    parse_event,
)
from tests.histories import histories

POLICY = load_policy()
DEMO_POLICY = load_policy(Path(engine.__file__).with_name("demo_policy.toml"))  # seconds
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=3)
SEEDS = (1, 7, 2026)
US = timedelta(microseconds=1)


@cache
def generated(seed: int) -> tuple[tuple[str, bytes], ...]:
    lines = histories(seed, tickets=300, maintenances=30, start=START, end=END, policy=POLICY)
    return tuple(lines)


def events(seed: int) -> list[InputEvent]:
    return [parse_event(raw) for _, raw in generated(seed)]


def by_subject(seed: int) -> dict[str, list[InputEvent]]:
    subjects: dict[str, list[InputEvent]] = defaultdict(list)
    for event in events(seed):
        subjects[event.subject].append(event)
    return subjects


@pytest.mark.parametrize("seed", SEEDS)
def test_the_same_seed_gives_the_same_bytes(seed: int) -> None:
    again = histories(seed, tickets=300, maintenances=30, start=START, end=END, policy=POLICY)
    assert tuple(again) == generated(seed)
    assert generated(seed) != generated(seed + 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_event_type_appears_in_its_domain(seed: int) -> None:
    seen = {(domain, parse_event(raw).type) for domain, raw in generated(seed)}
    assert seen == {("tickets", t) for t in TICKET_TYPES} | {
        ("maintenance", t) for t in MAINTENANCE_TYPES
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_times_lie_in_the_span_and_in_order_per_subject(seed: int) -> None:
    for subject_events in by_subject(seed).values():
        times = [event.time for event in subject_events]
        assert times == sorted(times)
        assert times[0] >= START
        assert times[-1] <= END


@pytest.mark.parametrize("seed", SEEDS)
def test_ids_are_unique_but_for_verbatim_repeats_right_after_the_original(seed: int) -> None:
    lines = [raw for _, raw in generated(seed)]
    seen: set[str] = set()
    repeats = 0
    for index, event in enumerate(events(seed)):
        if event.id in seen:
            assert lines[index] == lines[index - 1]
            repeats += 1
        seen.add(event.id)
    assert 0.005 * len(lines) < repeats < 0.05 * len(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_rejects_only_the_deliberately_invalid_events(seed: int) -> None:
    invalid = _invalid_lines(generated(seed), seed)
    assert len(invalid) == 3  # 1% of 300 tickets
    assert _rejected_lines(generated(seed), POLICY) == invalid


@pytest.mark.parametrize("seed", SEEDS)
def test_events_fall_on_and_just_around_deadlines(seed: int) -> None:
    offsets: Counter[timedelta] = Counter()
    for subject_events in by_subject(seed).values():
        state: engine.State | None = None
        for event in subject_events:
            deadline = engine.next_deadline(state, POLICY) if state else None
            if deadline is not None:
                offsets[event.time - deadline] += 1
            with contextlib.suppress(Rejected):  # the never-opened subjects
                state = engine.decide(state, event, POLICY).state
    assert offsets[timedelta(0)] > 0
    assert offsets[-US] > 0
    assert offsets[US] > 0


def test_a_short_span_under_the_seconds_policy_is_accepted_too() -> None:
    start = START + timedelta(hours=5, microseconds=123)
    end = start + timedelta(minutes=20)
    lines = tuple(
        histories(5, tickets=200, maintenances=20, start=start, end=end, policy=DEMO_POLICY)
    )
    times = [parse_event(raw).time for _, raw in lines]
    assert min(times) >= start
    assert max(times) <= end
    invalid = _invalid_lines(lines, 5)
    assert len(invalid) == 2
    assert _rejected_lines(lines, DEMO_POLICY) == invalid


def _invalid_lines(lines: tuple[tuple[str, bytes], ...], seed: int) -> list[int]:
    """Line numbers (from 1) of the events for never-opened subjects."""
    marker = f'"subject":"H{seed}-X'.encode()
    return [number for number, (_, raw) in enumerate(lines, start=1) if marker in raw]


def _rejected_lines(lines: tuple[tuple[str, bytes], ...], policy: Policy) -> list[int]:
    """Line numbers replay reports as rejected; any other complaint fails the test."""
    errors = io.StringIO()
    replay(read_events((raw for _, raw in lines), errors), policy, None, errors)
    reported = errors.getvalue().splitlines()
    assert all(": rejected (" in line for line in reported), reported
    return [int(line.split(":")[0].removeprefix("line ")) for line in reported]
