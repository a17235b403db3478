"""One timed run of a candidate: the environment it is spawned with, the wait for its committed
offsets, and what it did, read back from its log, its markers and its topics."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from bench.kafka import (
    OffsetWatch,
    count,
    create_topics,
    delete_topics_matching,
    first_last_timestamps,
)
from bench.machine import LoadLog, Sample, proc_status, sample
from bench.profiling import start_spy
from bench.results import REPO
from bench.run.candidates import Candidate
from bench.run.figures import Run, rates
from bench.workers import PARTITIONS, create_worker_topics, processor_env
from processor.spawn import WorkerProcess, free_port, stop_process, tail

OUTPUT_TOPICS = ("SLA_TOPIC_ESCALATIONS", "SLA_TOPIC_UPDATES_DUE", "SLA_TOPIC_BREACHES",
                 "SLA_TOPIC_NOTICES")  # fmt: skip
MODULES = {"faust": "bench.candidates.faust_bare", "aiokafka": "bench.candidates.aiokafka_loop",
           "quix": "bench.candidates.quix_stateful"}  # fmt: skip


@dataclass
class Bench:
    bootstrap: str
    kafka_version: str
    broker_pid: int | None
    work: Path  # var/bench/<stamp>: logs and data dirs
    quix_python: Path | None
    load: LoadLog = field(default_factory=LoadLog)


@dataclass
class Launch:
    """How one candidate is started: its command and whole environment, and for the processor
    its `SLA_*` settings (empty for the others). `bench-<run_id>` is its consumer group (the
    processor's app id) and the prefix of every topic it makes."""

    run_id: str
    command: list[str]
    env: dict[str, str]
    settings: dict[str, str]

    @property
    def prefix(self) -> str:
        return f"bench-{self.run_id}"

    def process(self, log: Path) -> WorkerProcess:
        return WorkerProcess(self.env, log, command=self.command, cwd=REPO, inherit=False)


@dataclass
class Attempt:
    """A candidate's process being timed, and what the runner saw of it."""

    cand: Candidate
    launch: Launch
    worker: WorkerProcess
    result: Run
    samples: list[Sample] = field(default_factory=list)
    spawned: float = 0.0  # wall clock
    done: float = 0.0  # wall clock: committed offsets at the input's end


def python() -> str:
    venv = REPO / ".venv/bin/python"
    return str(venv) if venv.exists() else sys.executable


class Runner:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def spawn(self, cand: Candidate, input_topic: str, events: int, run_id: str) -> Launch:
        """Command, environment and settings of one candidate."""
        data = self.bench.work / "data" / run_id
        data.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLA_", "BENCH_"))}
        base["BENCH_MARKERS"] = str(self.markers(run_id))
        if cand.is_processor:
            return self.processor(cand, input_topic, run_id, data, base)
        return self.baseline(cand, input_topic, events, run_id, data, base)

    def processor(self, cand: Candidate, input_topic: str, run_id: str, data: Path,
                  base: dict[str, str]) -> Launch:  # fmt: skip
        settings = processor_env(self.bench.bootstrap, f"bench-{run_id}", data, cand.store)
        settings["SLA_TOPIC_TICKETS"] = input_topic  # the shared input, produced beforehand
        settings.update(cand.env)
        if cand.kind == "processor":
            cmd = [python(), "-m", "processor", "worker"]
        else:
            cmd = [python(), "-m", "bench.candidates.processor_tuned"]
        knobs = {"BENCH_KNOBS": json.dumps(cand.knobs)} if cand.knobs else {}
        return Launch(run_id, cmd, {**base, **settings, **knobs}, settings)

    def baseline(self, cand: Candidate, input_topic: str, events: int, run_id: str, data: Path,
                 base: dict[str, str]) -> Launch:  # fmt: skip
        prefix = f"bench-{run_id}"
        env = {
            "BENCH_BOOTSTRAP": self.bench.bootstrap,
            "BENCH_INPUT": input_topic,
            "BENCH_GROUP": prefix,
            "BENCH_EXPECT": str(events),
            "BENCH_STORE": cand.store,
            "BENCH_DATA_DIR": str(data),
            "BENCH_PARTITIONS": str(PARTITIONS),
            "BENCH_WEB_PORT": str(free_port()),
            "BENCH_TABLE": "1" if cand.table else "0",
            "BENCH_OUTPUT": f"{prefix}.out",
        }
        if "producer_linger" in cand.knobs:
            env["BENCH_PRODUCER_LINGER"] = str(cand.knobs["producer_linger"])
        py = python()
        if cand.kind == "quix":
            assert self.bench.quix_python is not None
            py = str(self.bench.quix_python)
        # Quix Streams would read QUIX__* settings; none are set here.
        cmd = [py, "-m", MODULES[cand.kind]]
        return Launch(run_id, cmd, {**base, **env, "PYTHONPATH": str(REPO)}, {})

    def markers(self, run_id: str) -> Path:
        return self.bench.work / "logs" / f"{run_id}.markers"

    def log(self, cand: Candidate, run_id: str) -> Path:
        return self.bench.work / "logs" / f"{cand.key}-{run_id}.log"

    async def prepare(self, cand: Candidate, launch: Launch) -> None:
        if cand.is_processor:
            await create_worker_topics(launch.settings)
        elif cand.kind == "aiokafka":
            await create_topics(self.bench.bootstrap, [launch.env["BENCH_OUTPUT"]], PARTITIONS)

    async def clean_up(self, launch: Launch) -> None:
        """Delete the run's topics and data directory."""
        await delete_topics_matching(self.bench.bootstrap, launch.prefix)
        shutil.rmtree(self.bench.work / "data" / launch.run_id, ignore_errors=True)

    async def throughput(
        self,
        cand: Candidate,
        input_topic: str,
        targets: dict[TopicPartition, int],
        profile: dict[str, Any] | None = None,
        timeout: float = 900.0,
    ) -> Run:
        events = sum(targets.values())
        launch = self.spawn(cand, input_topic, events, uuid.uuid4().hex[:8])
        result = Run(cand.key, events)
        result.loadavg_before = self.bench.load.note(f"before {cand.key}")
        try:
            await self.prepare(cand, launch)
        except Exception as exc:
            result.ok, result.error = False, f"cannot prepare: {exc!r}"[-2000:]
            return result
        attempt = Attempt(cand, launch, launch.process(self.log(cand, launch.run_id)), result)
        attempt.spawned = attempt.worker.start()
        try:
            await self.until_committed(attempt, targets, profile, timeout)
        except Exception as exc:
            result.ok, result.error = False, str(exc)[-2000:]
        finally:
            attempt.worker.stop(signal.SIGTERM, 30)
        if result.ok:
            await self.read_back(attempt)
        await self.clean_up(launch)
        return result

    async def until_committed(self, a: Attempt, targets: dict[TopicPartition, int],
                              profile: dict[str, Any] | None, timeout: float) -> None:  # fmt: skip
        """Samples CPU every 100 ms until the group's committed offsets reach `targets` (then
        a.done); with `profile`, py-spy on the worker from the moment it is ready."""
        proc, key = a.worker.process, a.cand.key
        assert proc is not None
        spy = None
        try:
            async with OffsetWatch(self.bench.bootstrap, a.launch.prefix, targets) as watch:
                deadline = time.monotonic() + timeout
                while True:
                    a.samples.append(sample(proc.pid, self.bench.broker_pid))
                    if proc.poll() is not None:
                        raise RuntimeError(f"{key} exited {proc.returncode}: {tail(a.worker.log)}")
                    if profile is not None and spy is None and a.worker.ready():
                        spy = start_spy(proc.pid, profile)
                    if await watch.committed() >= a.result.events:
                        a.done = time.time()
                        a.samples.append(sample(proc.pid, self.bench.broker_pid))
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{key}: not done after {timeout:.0f} s")
                    await asyncio.sleep(0.1)
            hwm = proc_status(proc.pid, "VmHWM")
            a.result.peak_rss_mib = round(hwm / 2**20, 1) if hwm else None
        finally:
            if spy is not None:
                stop_process(spy, signal.SIGINT, 60)

    async def read_back(self, a: Attempt) -> None:
        """The run's figures: its first and last record, its outputs, its CPU."""
        text = a.worker.log.read_text(errors="replace")
        markers = self.markers(a.launch.run_id)
        if markers.exists():
            text += "\n" + markers.read_text()
        if a.cand.is_processor:
            span = await self.processor_outputs(a, text)
        else:
            span = await self.baseline_outputs(a, text)
        if span is not None:
            rates(a.result, a.samples, a.spawned, a.done, *span)

    async def processor_outputs(self, a: Attempt, text: str) -> tuple[float, float] | None:
        """First and last write to the tickets changelog; outputs, dead letters, rekeyed."""
        bootstrap, env, r = self.bench.bootstrap, a.launch.env, a.result
        span = await first_last_timestamps(bootstrap, f"{a.launch.prefix}-tickets-changelog")
        if span is None:
            r.ok, r.error = False, "empty tickets changelog"
            return None
        r.outputs = await count(bootstrap, [env[k] for k in OUTPUT_TOPICS])
        r.dead_letters = await count(bootstrap, [f"{env['SLA_TOPIC_TICKETS']}.dlq"])
        r.rekeyed = await count(bootstrap, [f"{a.launch.prefix}-rekeyed"])
        r.notes += re.findall(r"BENCH (?:conf-warning|effective) .*", text)
        if "H7TRACE" in text:
            r.notes.append("worker logged an INFO line per event (H7TRACE in stream.handle)")
        return span[0], span[1]

    async def baseline_outputs(self, a: Attempt, text: str) -> tuple[float, float] | None:
        """The candidate's own first and last markers; the raw aiokafka loop's outputs."""
        marks = dict(re.findall(r"BENCH (first|last) ([0-9.]+)", text))
        if "first" not in marks or "last" not in marks:
            a.result.ok, a.result.error = False, f"markers missing: {tail(a.worker.log)}"
            return None
        if a.cand.kind == "aiokafka":
            a.result.outputs = await count(self.bench.bootstrap, [a.launch.env["BENCH_OUTPUT"]])
        return float(marks["first"]), float(marks["last"])
