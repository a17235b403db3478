"""Benchmark of the deadline index: fill, arm, cancel and burst pops at a million pending keys."""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import machine, results
from processor.sla.deadlines import DeadlineIndex

# A fixed epoch (2026-01-01T00:00:00Z) keeps the data the same from run to run.
_T0 = 1_767_225_600.0
# Pending deadlines spread over a day: SLA targets run from minutes to hours.
_SPREAD = 86_400.0


@dataclass(frozen=True, slots=True)
class Config:
    pending: int
    repeat: int
    ops: int
    burst: int
    chunk: int
    ticks: int
    seed: int
    out: Path
    argv: Sequence[str] | None  # as given, for the result's command line


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed step: how many operations, the wall time, and the CPU time this process got."""

    ops: int
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class Data:
    """Everything a run reads, generated before any timing starts."""

    keys: list[str]
    dues: list[float]
    burst_dues: list[float]
    rearm_keys: list[str]
    rearm_dues: list[float]
    cancel_keys: list[str]


def make_data(config: Config) -> Data:
    rng = random.Random(config.seed)
    n = config.pending
    keys = [f"TCK-{i:08d}" for i in range(n)]
    return Data(
        keys=keys,
        dues=[_T0 + 1.0 + rng.random() * _SPREAD for _ in range(n)],
        burst_dues=[_T0 + rng.random() for _ in range(config.burst)],
        rearm_keys=rng.choices(keys, k=config.ops),
        rearm_dues=[_T0 + 1.0 + rng.random() * _SPREAD for _ in range(config.ops)],
        cancel_keys=rng.sample(keys, k=min(config.ops, n)),
    )


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float], ops: int) -> Sample:
    wall, cpu = clocks()
    return Sample(ops, wall - start[0], cpu - start[1])


def timed(run: Callable[[], int]) -> Sample:
    start = clocks()
    return since(start, run())


def arm_all(index: DeadlineIndex, keys: Sequence[str], dues: Sequence[float]) -> int:
    arm = index.arm
    for key, due in zip(keys, dues, strict=True):
        arm(key, due)
    return len(keys)


def cancel_all(index: DeadlineIndex, keys: Sequence[str]) -> int:
    cancel = index.cancel
    for key in keys:
        cancel(key)
    return len(keys)


def pop_chunks(index: DeadlineIndex, now: float, chunk: int) -> int:
    popped = 0
    while batch := index.pop_due(now, chunk):
        popped += len(batch)
    return popped


def idle_ticks(index: DeadlineIndex, now: float, ticks: int) -> int:
    pop_due = index.pop_due
    for _ in range(ticks):
        pop_due(now)
    return ticks


def settle() -> None:
    """Collect once, untimed, as a worker long past its last rebuild would have.

    A full collection walks every entry of the index (about 90 ms at a million keys here), and
    a big build leaves one owing; without this the next timed step would pay for it.
    """
    gc.collect()


def build(pairs: Sequence[tuple[str, float]]) -> tuple[DeadlineIndex, Sample]:
    start = clocks()
    index = DeadlineIndex.from_items(pairs)
    sample = since(start, len(pairs))
    settle()
    return index, sample


def compact(index: DeadlineIndex) -> int:
    stored = index.stored
    # Private, since the index compacts itself when it must: this times the pause a call
    # meets about once every `len(index)` re-arms or cancels.
    index._refile()
    return stored


def full_collection() -> int:
    gc.collect()
    return 1


def fill_and_churn(data: Data) -> dict[str, Sample]:
    index, built = build(list(zip(data.keys, data.dues, strict=True)))
    collected = timed(full_collection)
    rearmed = timed(lambda: arm_all(index, data.rearm_keys, data.rearm_dues))
    compacted = timed(lambda: compact(index))
    settle()
    cancelled = timed(lambda: cancel_all(index, data.cancel_keys))
    return {
        "fill: from_items": built,
        "arm: re-arm an existing key": rearmed,
        "cancel": cancelled,
        "compaction: entries kept or dropped": compacted,
        "gc.collect(): one full pass": collected,
    }


def fill_by_arm(data: Data) -> dict[str, Sample]:
    return {"fill: arm": timed(lambda: arm_all(DeadlineIndex(), data.keys, data.dues))}


def burst_pops(data: Data, config: Config) -> dict[str, Sample]:
    """`pending` keys in all, the first `burst` of them due within the same second."""
    dues = data.burst_dues + data.dues[config.burst :]
    index, _ = build(list(zip(data.keys, dues, strict=True)))
    now = _T0 + 1.0
    idle = timed(lambda: idle_ticks(index, _T0 - 1.0, config.ticks))
    whole = timed(lambda: len(index.pop_due(now)))
    arm_all(index, data.keys[: config.burst], data.burst_dues)
    settle()
    chunked = timed(lambda: pop_chunks(index, now, config.chunk))
    return {
        f"pop_due: {config.burst:,} due, one call": whole,
        f"pop_due: {config.burst:,} due, chunks of {config.chunk:,}": chunked,
        "pop_due: nothing due (idle tick)": idle,
    }


def one_run(data: Data, config: Config) -> dict[str, Sample]:
    """Each phase drops its index before the next builds one, so peak RSS holds about one."""
    return fill_and_churn(data) | fill_by_arm(data) | burst_pops(data, config)


def summarise(runs: list[dict[str, Sample]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for name in runs[0]:
        samples = [run[name] for run in runs]
        summary[name] = {
            "ops": samples[0].ops,
            "ops_per_s_median": statistics.median(s.ops / s.seconds for s in samples),
            "seconds_median": statistics.median(s.seconds for s in samples),
            "ops_per_s_runs": [round(s.ops / s.seconds) for s in samples],
            # Below 1 the step shared its core with other processes and ran slower for it.
            "cpu_over_wall_median": statistics.median(s.cpu_seconds / s.seconds for s in samples),
        }
    return summary


def index_mib(data: Data) -> float:
    """What a full index adds to the resident set, built once before any timing."""
    before = machine.own_rss_mib()
    index = DeadlineIndex.from_items(zip(data.keys, data.dues, strict=True))
    settle()
    grown = machine.own_rss_mib() - before
    del index
    return grown


def report(
    config: Config, summary: dict[str, dict[str, Any]], load: tuple[float, ...], index: float
) -> dict[str, Any]:
    return results.head("deadline_index", "python -m bench.deadline_index", config.argv) | {
        "pending": config.pending,
        "repeat": config.repeat,
        "seed": config.seed,
        "peak_rss_mib": round(machine.own_peak_rss_mib(), 1),
        "index_rss_mib": round(index, 1),
        "load_average_1m_before_after": [load[0], os.getloadavg()[0]],
        "results": summary,
    }


def table(result: dict[str, Any]) -> str:
    steps: dict[str, dict[str, Any]] = result["results"]
    lines = [
        f"deadline index, {result['pending']:,} pending, median of {result['repeat']} runs,"
        f" Python {result['python']}, {result['machine']}, nproc {result['nproc']}",
        "",
        "| operation | ops | median ops/s | median time | CPU/wall |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in steps.items():
        rate = f"{row['ops_per_s_median']:,.0f}" if row["ops"] > 1 else "-"
        lines.append(
            f"| {name} | {row['ops']:,} | {rate} | {row['seconds_median'] * 1e3:,.1f} ms"
            f" | {row['cpu_over_wall_median']:.2f} |"
        )
    before, after = result["load_average_1m_before_after"]
    lines += [
        "",
        f"index of {result['pending']:,} keys: {result['index_rss_mib']:,.1f} MiB resident;"
        f" process peak RSS (with the benchmark's own data): {result['peak_rss_mib']:,.1f} MiB",
        f"1-minute load average: {before:.2f} before, {after:.2f} after",
    ]
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.deadline_index", description=__doc__)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", type=int, default=500_000, help="re-arms and cancels per run")
    parser.add_argument("--burst", type=int, default=100_000, help="keys due in the same second")
    parser.add_argument("--chunk", type=int, default=10_000, help="limit of a chunked pop")
    parser.add_argument("--ticks", type=int, default=100_000, help="pop_due calls, none due")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("bench/results/deadline_index.json"))
    args = parser.parse_args(argv)
    if not 0 < args.burst <= args.pending:
        parser.error("--burst must be between 1 and --pending")
    return Config(**vars(args), argv=argv)


def main(argv: Sequence[str] | None = None) -> None:
    config = parse(argv)
    load = os.getloadavg()
    data = make_data(config)
    index = index_mib(data)
    runs = [one_run(data, config) for _ in range(config.repeat)]
    result = report(config, summarise(runs), load, index)
    results.write(config.out.parent, config.out.stem, result, table)
    print(table(result))


if __name__ == "__main__":
    main()
