"""Benchmark of the SLA engine: parse, then decide a realistic event mix, then a final timer sweep."""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.policy import Policy, load_policy
from schemas.cloudevents import InputEvent, Severity, Tier, parse_event

# A fixed epoch (2026-03-02T00:00:00Z) keeps the data the same from run to run.
_T0: Final = datetime(2026, 3, 2, tzinfo=UTC)
# Tickets open over two weeks: long enough that most are resolved before the last one opens.
_SPREAD: Final = timedelta(days=14)
_SEVERITIES: Final = (Severity.URGENT, Severity.HIGH, Severity.NORMAL, Severity.LOW)
_SEVERITY_WEIGHTS: Final = (5, 20, 50, 25)  # percent
_MINUTE: Final = timedelta(minutes=1)
_HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Config:
    tickets: int
    repeat: int
    seed: int
    out: Path
    profile: bool


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed pass: how many items it handled and how long that took."""

    items: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Pass:
    """One decide pass over every event, and the final sweep over the states it left."""

    decide: Sample
    sweep: Sample
    outputs: Counter[str]
    rejected: int
    states: int


# -- the event mix ------------------------------------------------------------------------------


def _cloudevent(type_: str, subject: str, at: datetime, data: dict[str, Any], n: int) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{subject}/{n}",
            "source": "bench",
            "type": type_,
            "time": at.isoformat().replace("+00:00", "Z"),
            "subject": subject,
            "data": data,
        }
    ).encode()


def ticket_events(
    rng: random.Random, policy: Policy, number: int
) -> list[tuple[datetime, str, dict[str, Any]]]:
    """One ticket's life in time order: open, answer, updates, maybe a pause or a severity
    change, resolve and (mostly) close."""
    severity = rng.choices(_SEVERITIES, _SEVERITY_WEIGHTS)[0]
    tier = rng.choice(list(Tier))
    opened = _T0 + _SPREAD * rng.random()
    target = policy.response_targets[(severity, tier)]
    # Most answers come within the target; one in seven is late (a breach).
    late = rng.random() < 0.15
    answered = opened + target * (rng.uniform(1.05, 3.0) if late else rng.uniform(0.05, 0.95))
    events = [
        (opened, "ticket.opened", {"customer_id": f"C-{number % 5000}", "support_tier": tier.value,
                                   "severity": severity.value}),
        (answered, "ticket.responded", {"agent_id": f"A-{number % 300}"}),
    ]  # fmt: skip
    required = policy.update_frequency.get(severity)
    every = required or timedelta(hours=12)
    at = answered
    for _ in range(rng.randint(0, 3)):
        # Updates around the required frequency: a share of windows is missed (update_due).
        at += every * rng.uniform(0.4, 1.3)
        events.append((at, "ticket.updated", {"agent_id": f"A-{number % 300}"}))
    if rng.random() < 0.1:
        pause = answered + (at - answered) * rng.random() + _MINUTE
        events.append((pause, "ticket.status_changed", {"status": "pending_customer"}))
        events.append((pause + _HOUR * rng.uniform(0.5, 30), "ticket.status_changed", {"status": "in_progress"}))  # fmt: skip
    if rng.random() < 0.1:
        change = opened + (at - opened) * rng.random()
        other = rng.choice([s for s in Severity if s is not severity])
        events.append((change, "ticket.severity_changed", {"severity": other.value}))
    # Resolved within about one update window of the last activity (up to two days if none).
    wait = every * rng.uniform(0.2, 1.5) if required else _MINUTE * rng.uniform(10, 2 * 24 * 60)
    resolved = max(t for t, _, _ in events) + wait
    events.append((resolved, "ticket.resolved", {}))
    if rng.random() < 0.8:
        events.append((resolved + _HOUR * rng.uniform(1, 72), "ticket.closed", {}))
    events.sort(key=lambda event: event[0])  # stable: the opening stays first
    return events


def make_stream(config: Config, policy: Policy) -> list[bytes]:
    """Every ticket's events as CloudEvent bytes, interleaved in global time order."""
    rng = random.Random(config.seed)
    stamped: list[tuple[datetime, int, int, bytes]] = []
    for number in range(config.tickets):
        subject = f"TCK-{number:08d}"
        for n, (at, type_, data) in enumerate(ticket_events(rng, policy, number)):
            stamped.append((at, number, n, _cloudevent(type_, subject, at, data, n)))
    stamped.sort(key=lambda item: item[:3])
    return [raw for *_, raw in stamped]


# -- the timed passes ---------------------------------------------------------------------------


def timed(run: Callable[[], int]) -> Sample:
    start = time.perf_counter()
    items = run()
    return Sample(items, time.perf_counter() - start)


def parse_all(stream: Sequence[bytes], into: list[InputEvent]) -> int:
    into.clear()
    append = into.append
    for raw in stream:
        append(parse_event(raw))
    return len(into)


def decide_all(
    events: Sequence[InputEvent],
    policy: Policy,
    states: dict[str, engine.State],
    counts: Counter[str],
) -> int:
    """Apply every event, holding each ticket's state in a dict as the shell's table would."""
    decide = engine.decide
    rejected = 0
    for event in events:
        subject = event.subject
        try:
            decision = decide(states.get(subject), event, policy)
        except Rejected:
            rejected += 1
            continue
        if decision.state is None:
            del states[subject]
        else:
            states[subject] = decision.state
        for output in decision.outputs:
            counts[output.type] += 1
    counts["rejected"] = rejected
    return len(events)


def sweep_all(
    states: dict[str, engine.State], now: datetime, policy: Policy, counts: Counter[str]
) -> int:
    """Fire every timer due by `now` on every state, as a timer tick over the whole table."""
    advance = engine.advance
    swept = len(states)
    for subject, state in list(states.items()):
        decision = advance(state, now, policy)
        if decision.state is None:
            del states[subject]
        else:
            states[subject] = decision.state
        for output in decision.outputs:
            counts[output.type] += 1
    return swept


def one_pass(events: Sequence[InputEvent], policy: Policy) -> Pass:
    states: dict[str, engine.State] = {}
    counts: Counter[str] = Counter()
    decided = timed(lambda: decide_all(events, policy, states, counts))
    swept = timed(lambda: sweep_all(states, events[-1].time, policy, counts))
    rejected = counts.pop("rejected")
    return Pass(decided, swept, counts, rejected, len(states))


# -- reporting ----------------------------------------------------------------------------------


def rate(samples: Sequence[Sample]) -> dict[str, object]:
    return {
        "items": samples[0].items,
        "per_s_median": statistics.median(s.items / s.seconds for s in samples),
        "seconds_median": statistics.median(s.seconds for s in samples),
        "per_s_runs": [round(s.items / s.seconds) for s in samples],
    }


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes; this benchmark targets the Linux host).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def nproc() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def report(
    config: Config, stream_bytes: int, parses: list[Sample], passes: list[Pass], parsed_rss: float
) -> dict[str, object]:
    last = passes[-1]
    if any(p.outputs != last.outputs for p in passes):
        raise AssertionError("the engine gave different outputs on the same input")
    return {
        "benchmark": "engine",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "nproc": nproc(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "tickets": config.tickets,
        "events": parses[0].items,
        "input_mib": round(stream_bytes / 2**20, 1),
        "repeat": config.repeat,
        "seed": config.seed,
        "results": {
            "parse_event": rate(parses),
            "engine.decide": rate([p.decide for p in passes]),
            "engine.advance (final sweep)": rate([p.sweep for p in passes]),
        },
        "outputs": dict(sorted(last.outputs.items())),
        "rejected": last.rejected,
        "states_left": last.states,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_after_parse_mib": round(parsed_rss, 1),
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"SLA engine, {result['tickets']:,} tickets, {result['events']:,} events"
        f" ({result['input_mib']} MiB), median of {result['repeat']} runs on one core,"
        f" Python {result['python']}, {result['machine']}, nproc {result['nproc']}",
        "",
        "| pass | items | median items/s | median time |",
        "|---|---:|---:|---:|",
    ]
    for name, row in result["results"].items():
        lines.append(
            f"| {name} | {row['items']:,} | {row['per_s_median']:,.0f}"
            f" | {row['seconds_median']:,.2f} s |"
        )
    outputs = ", ".join(f"{name} {count:,}" for name, count in result["outputs"].items())
    lines += [
        "",
        f"outputs: {outputs}; rejected: {result['rejected']:,};"
        f" states left after the sweep: {result['states_left']:,}",
        f"peak RSS: {result['peak_rss_mib']:,.1f} MiB"
        f" ({result['peak_rss_after_parse_mib']:,.1f} MiB with the input parsed, before any"
        " decide: the rest is ticket states)",
    ]
    return "\n".join(lines)


def profile(events: Sequence[InputEvent], policy: Policy, top: int = 15) -> str:
    """One decide pass and sweep under cProfile: the top functions by cumulative and own time."""
    profiler = cProfile.Profile()
    profiler.runcall(one_pass, events, policy)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()


def parse(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("bench/results/engine.json"))
    parser.add_argument(
        "--profile", action="store_true", help="also profile one pass; print the top functions"
    )
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.repeat < 1:
        parser.error("--tickets and --repeat must be at least 1")
    return Config(**vars(args))


def main(argv: Sequence[str] | None = None) -> None:
    config = parse(argv)
    policy = load_policy()
    stream = make_stream(config, policy)
    events: list[InputEvent] = []
    parses = [timed(lambda: parse_all(stream, events)) for _ in range(config.repeat)]
    # The parsed events stay alive for every pass; freezing them keeps the collector from
    # re-scanning a few million long-lived objects, which a streaming shell never holds.
    gc.collect()
    gc.freeze()
    parsed_rss = peak_rss_mib()
    passes = [one_pass(events, policy) for _ in range(config.repeat)]
    result = report(config, sum(map(len, stream)), parses, passes, parsed_rss)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    if config.profile:
        print()
        print(profile(events, policy))


if __name__ == "__main__":
    main()
