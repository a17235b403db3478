"""Benchmark of the SLA engine: parse, then decide a realistic event mix, then a final timer sweep."""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import machine, results, workload
from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.policy import Policy, load_policy
from schemas.cloudevents import InputEvent, parse_event


@dataclass(frozen=True, slots=True)
class Config:
    tickets: int
    repeat: int
    seed: int
    out: Path
    profile: bool
    argv: Sequence[str] | None  # as given, for the result's command line
    policy: Path | None = None  # None: the seed's


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


def make_stream(config: Config, policy: Policy) -> list[bytes]:
    """Every ticket's events as CloudEvent bytes, interleaved in global time order."""
    return [raw for _, raw in workload.lives(config.tickets, policy, config.seed, "TCK")]


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


def report(
    config: Config, stream_bytes: int, parses: list[Sample], passes: list[Pass], parsed_rss: float
) -> dict[str, Any]:
    last = passes[-1]
    if any(p.outputs != last.outputs for p in passes):
        raise AssertionError("the engine gave different outputs on the same input")
    return results.head("engine", "python -m bench.engine", config.argv) | {
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
        "peak_rss_mib": round(machine.own_peak_rss_mib(), 1),
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
    parser.add_argument("--policy", type=Path, help="a policy file (default: the seed's)")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.repeat < 1:
        parser.error("--tickets and --repeat must be at least 1")
    return Config(**vars(args), argv=argv)


def main(argv: Sequence[str] | None = None) -> None:
    config = parse(argv)
    policy = load_policy(config.policy)
    stream = make_stream(config, policy)
    events: list[InputEvent] = []
    parses = [timed(lambda: parse_all(stream, events)) for _ in range(config.repeat)]
    # The parsed events stay alive for every pass; freezing them keeps the collector from
    # re-scanning a few million long-lived objects, which a streaming shell never holds.
    gc.collect()
    gc.freeze()
    parsed_rss = machine.own_peak_rss_mib()
    passes = [one_pass(events, policy) for _ in range(config.repeat)]
    result = report(config, sum(map(len, stream)), parses, passes, parsed_rss)
    results.write(config.out.parent, config.out.stem, result, table)
    print(table(result))
    if config.profile:
        print()
        print(profile(events, policy))


if __name__ == "__main__":
    main()
