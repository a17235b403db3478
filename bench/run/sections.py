"""The benchmark's sections, each filling its keys of the result: throughput, knobs,
supplementary, memory, profile. They share one pre-produced input topic."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from bench import workload
from bench.kafka import create_topics, delete_topics_matching, end_offsets, produce
from bench.machine import now_iso
from bench.profiling import top_functions
from bench.results import ratio
from bench.run.candidates import KNOBS, SUPPLEMENTARY, THROUGHPUT, Candidate
from bench.run.figures import Run
from bench.run.memory import memory_per_ticket
from bench.run.report import summarize
from bench.run.runner import Bench, Runner
from bench.workers import PARTITIONS
from processor.sla.policy import load_policy


@dataclass
class Session:
    """One invocation: its options, broker, runner, result, and the shared input topic."""

    args: argparse.Namespace
    bench: Bench
    runner: Runner
    result: dict[str, Any]
    input_topic: str = ""  # none until an input is produced
    targets: dict[TopicPartition, int] = field(default_factory=dict)

    def pick(self, cands: list[Candidate]) -> list[Candidate]:
        wanted = set(self.args.candidates.split(",")) if self.args.candidates else None
        chosen = [c for c in cands if wanted is None or c.key in wanted]
        if self.bench.quix_python is None:
            chosen = [c for c in chosen if c.kind != "quix"]
        return chosen

    async def rounds(self, cands: list[Candidate]) -> dict[str, list[Run]]:
        runs: dict[str, list[Run]] = {c.key: [] for c in cands}
        repeat = self.args.repeat
        for i in range(repeat):
            for cand in cands:  # interleaved: drift in the machine's load hits every candidate
                run = await self.runner.throughput(cand, self.input_topic, self.targets)
                runs[cand.key].append(run)
                print(f"bench: round {i + 1}/{repeat} {cand.key}: "
                      + (f"{run.events_per_s:,.0f} events/s committed, "
                         f"{run.processing_events_per_s:,.0f} processing, startup {run.startup_s} s, "
                         f"foreign {run.foreign_cores} cores" if run.ok else f"FAILED {run.error}"),
                      flush=True)  # fmt: skip
        return runs

    async def summary(self, cands: list[Candidate]) -> dict[str, Any]:
        chosen = self.pick(cands)
        return summarize(chosen, await self.rounds(chosen))


async def main_async(args: argparse.Namespace, bench: Bench, result: dict[str, Any]) -> None:
    s = Session(args, bench, Runner(bench), result)
    sections = set(args.sections.split(","))
    if sections & {"throughput", "knobs", "profile", "supplementary"}:
        await produce_input(s)
    if "throughput" in sections:
        await throughput(s)
    note_traced(s)
    if "knobs" in sections:
        await knobs(s)
    if "supplementary" in sections:
        await supplementary(s)
    if "memory" in sections:
        await memory(s)
    if "profile" in sections:
        await profile(s)
    if s.input_topic:
        await delete_topics_matching(bench.bootstrap, s.input_topic)


async def produce_input(s: Session) -> None:
    """The events every throughput run reads, in a topic of PARTITIONS partitions."""
    bootstrap = s.bench.bootstrap
    s.input_topic = topic = f"bench-input-{uuid.uuid4().hex[:8]}.tickets.events"
    await create_topics(bootstrap, [topic], PARTITIONS)
    records = workload.ticket_mix(s.args.events, load_policy(), workload.utcnow())
    types = Counter(str(orjson.loads(v)["type"]) for _, v in records)
    seconds = await produce(bootstrap, topic, records)
    s.targets = targets = await end_offsets(bootstrap, [topic])
    s.result["input"] = {"topic": topic, "events": sum(targets.values()),
                         "per_partition": [targets[tp] for tp in sorted(targets)],
                         "bytes": sum(len(v) for _, v in records), "types": dict(types),
                         "subjects": len({k for k, _ in records}),
                         "produce_s": round(seconds, 2)}  # fmt: skip
    del records
    print(f"bench: {sum(targets.values()):,} events in {topic} ({seconds:.1f} s)", flush=True)


COMMITTED, PROCESSING = "events_per_s", "processing_events_per_s"
# The throughput section's ratios: (name, numerator, denominator, median field).
RATIOS = (
    ("processor (memory) / bare Faust with table, committed (goal >= 0.8)",
     "processor-memory", "faust-table", COMMITTED),
    ("processor (memory) / bare Faust with table, processing",
     "processor-memory", "faust-table", PROCESSING),
    ("processor (memory) / raw aiokafka, committed", "processor-memory", "aiokafka", COMMITTED),
    ("processor (rocksdb) / processor (memory), committed",
     "processor-rocksdb", "processor-memory", COMMITTED),
    ("bare Faust with table / without, committed", "faust-table", "faust-bare", COMMITTED),
    ("processor (memory) / Quix Streams, committed", "processor-memory", "quix", COMMITTED),
)  # fmt: skip
# The supplementary section's: [committed, processing] each.
BOTH_RATIOS = (
    ("processor / bare Faust with table, both defaults [committed, processing]",
     "processor-memory", "faust-table"),
    ("processor / bare Faust with table, both producer_linger=0.05",
     "tuned-producer_linger", "faust-table-linger"),
    ("bare Faust with table: linger / default", "faust-table-linger", "faust-table"),
    ("processor: linger / default", "tuned-producer_linger", "processor-memory"),
)  # fmt: skip


def median_ratio(rows: dict[str, Any], a: str, b: str, name: str) -> float | None:
    """Ratio of two candidates' medians of `name` (None if either did not run)."""
    return ratio(rows.get(a, {}).get("median", {}).get(name),
                 rows.get(b, {}).get("median", {}).get(name))  # fmt: skip


async def throughput(s: Session) -> None:
    s.result["throughput"] = rows = await s.summary(THROUGHPUT)
    s.result["ratios"] = {name: median_ratio(rows, a, b, f) for name, a, b, f in RATIOS}


def note_traced(s: Session) -> None:
    """A note if the processor logged one INFO line per event during the throughput runs."""
    for row in s.result.get("throughput", {}).values():
        if any("INFO line per event" in n for run in row["runs"] for n in run["notes"]):
            s.result["notes"].append(
                "the processor logged one INFO line per event during these runs"
            )
            return


async def knobs(s: Session) -> None:
    s.result["knobs"] = rows = await s.summary(KNOBS)
    notes = {n for row in rows.values() for run in row["runs"] for n in run["notes"]
             if "conf-warning" in n}  # fmt: skip
    s.result["knob_notes"] = sorted(notes) or [
        "setting app.conf after assemble() raised no warning"
    ]
    effective = {}
    for key, row in rows.items():
        for run in row["runs"]:
            for n in run["notes"]:
                if n.startswith("BENCH effective"):
                    effective[key] = json.loads(n.removeprefix("BENCH effective "))
    s.result["knobs_effective"] = effective


async def supplementary(s: Session) -> None:
    s.result["supplementary"] = rows = await s.summary(SUPPLEMENTARY)
    s.result["supplementary_meta"] = {"date": now_iso(),
                                      "load_log_from": len(s.bench.load.entries)}  # fmt: skip
    s.result["supplementary_ratios"] = {
        name: [median_ratio(rows, a, b, COMMITTED), median_ratio(rows, a, b, PROCESSING)]
        for name, a, b in BOTH_RATIOS
    }


async def memory(s: Session) -> None:
    """Per store, the median over `repeat` runs; then (unless --no-trace) one run under
    tracemalloc."""
    args, runner = s.args, s.runner
    s.result["memory"] = []
    for store in ("memory://", "rocksdb://"):
        reps = [await memory_per_ticket(runner, store, args.tickets) for _ in range(args.repeat)]
        summary = memory_summary(reps)
        s.result["memory"].append(summary)
        if "error" not in summary:
            print(f"bench: memory {store}: {summary['bytes_per_ticket']} bytes/ticket "
                  f"(marginal {summary['marginal_bytes_per_ticket']})", flush=True)  # fmt: skip
    if not args.no_trace:
        traced = await memory_per_ticket(runner, "memory://", args.tickets, trace=True)
        s.result["memory_traced"] = traced
        print(f"bench: memory traced: {traced.get('traced_bytes_per_ticket')} live bytes/ticket"
              f" ({traced.get('error', 'ok')})", flush=True)  # fmt: skip


def memory_summary(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The first good run with each figure the median over the good runs, and every run; the
    last run if none is good."""
    good = [m for m in reps if "error" not in m]
    if not good:
        return reps[-1]
    summary = dict(good[0])
    for k in ("bytes_per_ticket", "marginal_bytes_per_ticket", "data_dir_mib"):
        summary[k] = statistics.median(m[k] for m in good)
    summary["rss_mib"] = {k: statistics.median(m["rss_mib"][k] for m in good)
                          for k in good[0]["rss_mib"]}  # fmt: skip
    summary["runs"] = reps
    return summary


async def profile(s: Session) -> None:
    """Two processor throughput runs under py-spy: collapsed stacks (the tables), then a flame
    graph."""
    cand, args = THROUGHPUT[0], s.args
    out_dir = Path(args.out)
    raw = s.bench.work / "profile.raw.txt"
    prof: dict[str, Any] = {"rate": 100}
    run = await s.runner.throughput(cand, s.input_topic, s.targets,
                                    profile={"format": "raw", "output": raw, "rate": 100})  # fmt: skip
    prof["run"] = asdict(run)
    if raw.exists():
        prof.update(top_functions(raw))
        shutil.copy(raw, out_dir / f"profile{args.suffix}.collapsed.txt")
        prof["collapsed"] = str(out_dir / f"profile{args.suffix}.collapsed.txt")
    svg = out_dir / f"profile{args.suffix}.svg"
    run2 = await s.runner.throughput(cand, s.input_topic, s.targets,
                                     profile={"format": "flamegraph", "output": svg, "rate": 100})  # fmt: skip
    prof["svg_run"] = asdict(run2)
    prof["svg"] = str(svg) if svg.exists() else None
    s.result["profile"] = prof
