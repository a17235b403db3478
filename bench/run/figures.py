"""The figures of one throughput run, and how they come from its clocks and CPU samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.machine import Sample, at

CLOCK = (
    "Each run: the input (N events) is already in the 4-partition input topic when the candidate "
    "process is spawned as a new consumer group (auto_offset_reset=earliest). `first` = the "
    "moment the candidate handled its first record (its own `BENCH first` marker; for the "
    "processor, which is run unmodified, the timestamp of the first record in its tickets "
    "changelog, i.e. its first table write). `committed` = the moment the runner, polling the "
    "group's committed offsets every 100 ms, saw them reach the input's end offsets. "
    "events/s = N / (committed - first): processed, outputs sent, offsets committed; it includes "
    "the wait for the framework's next commit (Faust: every 2.8 s or 10,000 records, Quix: 5 s, "
    "raw aiokafka: every batch). `processing` events/s = N / (last - first), last = the last "
    "record handled (last changelog write for the processor): the commit tail left out. "
    "`startup` = spawn to first record (imports, group join, recovery), not in either rate."
)


@dataclass
class Run:
    candidate: str
    events: int
    ok: bool = True
    error: str | None = None
    loadavg_before: list[float] = field(default_factory=list)
    startup_s: float | None = None
    processing_s: float | None = None
    committed_s: float | None = None
    events_per_s: float | None = None
    processing_events_per_s: float | None = None
    cpu_s: float | None = None  # candidate CPU seconds, first -> committed
    events_per_cpu_s: float | None = None
    broker_cores: float | None = None
    foreign_cores: float | None = None  # machine busy minus candidate, broker and runner
    peak_rss_mib: float | None = None
    outputs: int | None = None
    dead_letters: int | None = None
    rekeyed: int | None = None
    notes: list[str] = field(default_factory=list)


def rates(result: Run, samples: Sequence[Sample], spawned: float, done: float, first: float,
          last: float) -> None:  # fmt: skip
    """Times, rates and CPU of a run spawned at `spawned` whose first and last record were
    handled at `first` and `last` and whose offsets were committed at `done` (wall clock)."""
    events = result.events
    result.startup_s = round(first - spawned, 3)
    result.processing_s = round(last - first, 3)
    result.committed_s = round(done - first, 3)
    result.events_per_s = round(events / (done - first), 1)
    result.processing_events_per_s = round(events / max(last - first, 1e-6), 1)
    start, end = at(samples, first), samples[-1]
    wall = max(end.t - start.t, 1e-6)
    result.cpu_s = round(end.candidate - start.candidate, 2)
    result.events_per_cpu_s = round(events / max(result.cpu_s, 0.01), 1)
    broker = end.broker - start.broker
    result.broker_cores = round(broker / wall, 2)
    foreign = (end.machine - start.machine) - result.cpu_s - broker - (end.runner - start.runner)
    result.foreign_cores = round(max(foreign, 0.0) / wall, 2)
