"""Memory per open ticket: a worker's settled RSS with none, half and all of N open tickets."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from bench import workload
from bench.kafka import OffsetWatch, Record, create_topics, end_offsets, produce
from bench.machine import dir_size, settled_rss
from bench.run.candidates import Candidate
from bench.run.runner import Launch, Runner
from bench.workers import PARTITIONS, metrics
from processor.spawn import WorkerProcess, tail


class Tracer:
    """The live Python heap of a worker run under tracemalloc (BENCH_TRACEMALLOC): at each
    step the runner writes a label to the trigger file and the worker answers with a `BENCH
    tracemalloc <label> {...}` marker. Does nothing when not `enabled`."""

    def __init__(self, enabled: bool, trigger: Path, markers: Path) -> None:
        self.enabled = enabled
        self.trigger = trigger
        self.markers = markers
        self.traced: dict[int, dict[str, Any]] = {}

    async def snapshot(self, label: int) -> None:
        if not self.enabled:
            return
        self.trigger.write_text(str(label))
        limit = time.monotonic() + 300
        while time.monotonic() < limit:
            text = self.markers.read_text() if self.markers.exists() else ""
            found = re.search(rf"BENCH tracemalloc {label} (.*)", text)
            if found:
                self.traced[label] = json.loads(found.group(1))
                return
            await asyncio.sleep(0.5)
        raise RuntimeError("no tracemalloc snapshot")

    def figures(self, tickets: int) -> dict[str, Any]:
        """Live heap bytes and blocks per ticket, and the allocation sites that grew most."""
        first, last = self.traced[0], self.traced[tickets]
        before = {site: size for site, size, _ in first["top"]}
        growth = [[site, round((size - before.get(site, 0)) / tickets), n]
                  for site, size, n in last["top"]]  # fmt: skip
        return {
            "traced_bytes_per_ticket": round((last["traced"] - first["traced"]) / tickets),
            "traced_blocks_per_ticket": round((last["blocks"] - first["blocks"]) / tickets, 1),
            "traced_top_growth": sorted(growth, key=lambda row: -row[1])[:15],
        }


async def memory_per_ticket(
    runner: Runner, store: str, tickets: int, trace: bool = False
) -> dict[str, Any]:
    """RSS of a worker with 0, tickets/2 and `tickets` open tickets. With `trace`, the worker
    runs under tracemalloc (bench/candidates/processor_tuned.py) and the live Python heap is
    read at each step too: RSS growth beyond it is allocator fragmentation or native memory."""
    bench = runner.bench
    kind = "tuned" if trace else "processor"
    name = f"memory-{store[:-3]}{'-traced' if trace else ''}"
    cand = Candidate(name, f"processor, {store}", kind, store=store)
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-{run_id}.tickets.events"
    await create_topics(bench.bootstrap, [topic], PARTITIONS)
    launch = runner.spawn(cand, topic, tickets, run_id)
    tracer = Tracer(trace, bench.work / "logs" / f"{run_id}.snapshot", runner.markers(run_id))
    if trace:
        launch.env["BENCH_TRACEMALLOC"] = str(tracer.trigger)
    await runner.prepare(cand, launch)
    out: dict[str, Any] = {"store": store, "tickets": tickets,
                           "loadavg_before": bench.load.note(f"before {cand.key}")}  # fmt: skip
    records = workload.open_tickets(tickets, f"MEM{run_id}", workload.utcnow())
    worker = launch.process(runner.log(cand, run_id))
    worker.start()
    try:
        rss = await rss_by_tickets(runner, worker, launch, records, tracer)
        out["open_tickets_metric"] = metrics(launch.env["SLA_WEB_PORT"]).get("sla_open_tickets")
        out.update(rss_figures(rss, tickets))
        if trace:
            out.update(tracer.figures(tickets))
        data = Path(launch.env["SLA_DATA_DIR"])
        out["data_dir_mib"] = round(dir_size(data) / 2**20, 1) if data.exists() else 0.0
    except Exception as exc:
        out["error"] = str(exc)[-2000:]
    finally:
        worker.stop(signal.SIGTERM, 30)
        await runner.clean_up(launch)
    return out


async def rss_by_tickets(runner: Runner, worker: WorkerProcess, launch: Launch,
                         records: list[Record], tracer: Tracer) -> dict[int, int]:  # fmt: skip
    """The worker's settled RSS (bytes) once ready, then once half of `records`, then all of
    them, are committed; a tracemalloc snapshot at each step."""
    proc = worker.process
    assert proc is not None
    deadline = time.monotonic() + 120
    while not worker.ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker not ready: {tail(worker.log)}")
        await asyncio.sleep(0.2)
    rss = {0: await settled_rss(proc.pid)}
    await tracer.snapshot(0)
    bootstrap, topic = runner.bench.bootstrap, launch.settings["SLA_TOPIC_TICKETS"]
    half, tickets = len(records) // 2, len(records)
    for upto, batch in ((half, records[:half]), (tickets, records[half:])):
        await produce(bootstrap, topic, batch)
        targets = await end_offsets(bootstrap, [topic])
        async with OffsetWatch(bootstrap, launch.prefix, targets) as watch:
            limit = time.monotonic() + 900
            while await watch.committed() < upto:
                if proc.poll() is not None or time.monotonic() > limit:
                    raise RuntimeError(f"worker stopped or too slow: {tail(worker.log)}")
                await asyncio.sleep(0.2)
        rss[upto] = await settled_rss(proc.pid)
        await tracer.snapshot(upto)
    return rss


def rss_figures(rss: dict[int, int], tickets: int) -> dict[str, Any]:
    half = tickets // 2
    return {
        "rss_mib": {str(k): round(v / 2**20, 1) for k, v in rss.items()},
        "bytes_per_ticket": round((rss[tickets] - rss[0]) / tickets),
        "marginal_bytes_per_ticket": round((rss[tickets] - rss[half]) / (tickets - half)),
    }
