"""End-to-end benchmark of the processor against a real Kafka broker.

    python -m bench.run [--quick] [--out bench/results/] [--bootstrap HOST:PORT]

1. Throughput: N generated ticket events (bench/engine.py's mix, valid CloudEvents keyed by
   subject, 4 partitions) are produced BEFORE a candidate starts; the candidate is then started
   as a fresh consumer group and timed until its committed offsets reach the end offsets.
   Candidates: the processor (memory and rocksdb), a bare Faust agent with and without a table,
   a raw aiokafka loop, Quix Streams; then the processor with Faust tuning knobs.
2. Memory per open ticket: worker RSS after N ticket.opened events minus RSS with none, / N.
3. Profile: py-spy over one processor throughput run; the top functions.

Starts its own broker (deploy/kafka/kafka.sh, port 49092, var/kafka-bench) unless --bootstrap
is given, and stops it at the end. Writes <out>/processor.json and <out>/processor.md
(--quick: processor-quick.*, small sizes, one run each: a smoke check, not figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from bench import workload
from processor.settings import Settings
from processor.sla.policy import load_policy
from processor.spawn import free_port, stop_process, tail
from processor.topics import create_topics as create_processor_topics

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
BENCH_PORT = 49092
BENCH_DIR = "var/kafka-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

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


# -- candidates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    key: str
    label: str
    kind: str  # processor | tuned | faust | aiokafka | quix
    store: str = "memory://"
    table: bool = True
    knobs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_processor(self) -> bool:
        return self.kind in ("processor", "tuned")


THROUGHPUT = [
    Candidate("processor-memory", "processor, memory://", "processor"),
    Candidate("processor-rocksdb", "processor, rocksdb://", "processor", store="rocksdb://"),
    Candidate("faust-table", "bare Faust agent + table (memory)", "faust"),
    Candidate("faust-bare", "bare Faust agent, no table", "faust", table=False),
    Candidate("aiokafka", "raw aiokafka loop (getmany, loads, produce, commit)", "aiokafka"),
    Candidate("quix", "Quix Streams, state = last value (memory store)", "quix"),
]

_ALL_KNOBS: dict[str, Any] = {
    "loop": "uvloop",
    "broker_commit_every": 100_000,
    "broker_commit_interval": 10.0,
    "stream_buffer_maxsize": 16_384,
    "producer_linger": 0.05,
    "stream_wait_empty": False,
}
KNOBS = [
    Candidate("tuned-none", "processor via bench wrapper, no knob (control)", "tuned"),
    *(
        Candidate(f"tuned-{name}", f"{name}={value!r}", "tuned", knobs={name: value})
        for name, value in _ALL_KNOBS.items()
    ),
    Candidate("tuned-all", "all of the above together", "tuned", knobs=dict(_ALL_KNOBS)),
]


# Does producer_linger help the processor more than it helps the bare-Faust baseline?
SUPPLEMENTARY = [
    THROUGHPUT[2],  # bare Faust + table, defaults
    Candidate(
        "faust-table-linger",
        "bare Faust agent + table, producer_linger=0.05",
        "faust",
        knobs={"producer_linger": 0.05},
    ),
    THROUGHPUT[0],  # the processor, defaults
    Candidate(
        "tuned-producer_linger",
        "processor (bench wrapper), producer_linger=0.05",
        "tuned",
        knobs={"producer_linger": 0.05},
    ),
]


# -- environment --------------------------------------------------------------------------------


@dataclass
class Bench:
    bootstrap: str
    kafka_version: str
    broker_pid: int | None
    work: Path  # var/bench/<stamp>: logs and data dirs
    quix_python: Path | None
    load_log: list[dict[str, Any]] = field(default_factory=list)

    def note_load(self, what: str) -> tuple[float, float, float]:
        load = os.getloadavg()
        self.load_log.append(
            {"at": now_iso(), "what": what, "loadavg": [round(x, 2) for x in load]}
        )
        return load


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def kafka_sh(*args: str) -> None:
    subprocess.run(["bash", str(REPO / "deploy/kafka/kafka.sh"), *args], check=True, cwd=REPO)


def wait_quiet(threshold: float, poll: float, limit: float) -> dict[str, Any]:
    """Wait until the 1-minute load average is at most `threshold` (at most `limit` seconds)."""
    started = time.monotonic()
    trace = []
    while True:
        load = os.getloadavg()
        trace.append([round(time.monotonic() - started), round(load[0], 2)])
        if load[0] <= threshold:
            break
        if time.monotonic() - started + poll > limit:
            print(f"bench: load {load[0]:.2f} still above {threshold} after {limit:.0f} s; going on",
                  flush=True)  # fmt: skip
            break
        print(f"bench: 1-min load {load[0]:.2f} > {threshold}; waiting", flush=True)
        time.sleep(poll)
    return {"threshold": threshold, "waited_s": round(time.monotonic() - started),
            "quiet": load[0] <= threshold, "trace": trace}  # fmt: skip


# -- /proc sampling -----------------------------------------------------------------------------


def proc_cpu(pid: int | None) -> float:
    """utime+stime of a process in seconds (0 if gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in parts[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK


def proc_status(pid: int, name: str) -> int | None:
    """A `VmRSS`/`VmHWM` line of /proc/PID/status in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class Sample:
    t: float
    candidate: float
    broker: float
    runner: float
    machine: float


def sample(pid: int, broker: int | None) -> Sample:
    return Sample(time.time(), proc_cpu(pid), proc_cpu(broker), proc_cpu(os.getpid()),
                  machine_busy())  # fmt: skip


def at(samples: Sequence[Sample], t: float) -> Sample:
    """The sample closest to time t."""
    return min(samples, key=lambda s: abs(s.t - t))


# -- one run ------------------------------------------------------------------------------------


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


class Runner:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def spawn(
        self, cand: Candidate, input_topic: str, events: int, run_id: str
    ) -> tuple[list[str], dict[str, str], str, dict[str, Any]]:
        """Command, environment, consumer group, and what to read back, for one candidate."""
        b = self.bench
        prefix = f"bench-{run_id}"
        data = b.work / "data" / run_id
        data.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLA_", "BENCH_"))}
        base["BENCH_MARKERS"] = str(self.markers(run_id))
        py = (
            str(REPO / ".venv/bin/python")
            if (REPO / ".venv/bin/python").exists()
            else sys.executable
        )
        if cand.is_processor:
            env = {
                "SLA_KAFKA_BOOTSTRAP_SERVERS": b.bootstrap,
                "SLA_APP_ID": prefix,
                "SLA_TOPIC_TICKETS": input_topic,
                "SLA_TOPIC_MAINTENANCE": f"{prefix}.maintenance.events",
                "SLA_TOPIC_ESCALATIONS": f"{prefix}.sla.escalations",
                "SLA_TOPIC_UPDATES_DUE": f"{prefix}.sla.updates-due",
                "SLA_TOPIC_BREACHES": f"{prefix}.sla.breaches",
                "SLA_TOPIC_NOTICES": f"{prefix}.maintenance.notices",
                "SLA_TOPIC_PARTITIONS": str(PARTITIONS),
                "SLA_STORE": cand.store,
                "SLA_DATA_DIR": str(data),
                "SLA_WEB_PORT": str(free_port()),
            }
            module = "processor" if cand.kind == "processor" else "bench.candidates.processor_tuned"
            cmd = [py, "-m", module, "worker"] if cand.kind == "processor" else [py, "-m", module]
            knobs = {"BENCH_KNOBS": json.dumps(cand.knobs)} if cand.knobs else {}
            return cmd, {**base, **env, **knobs}, prefix, {"settings": env}
        env = {
            "BENCH_BOOTSTRAP": b.bootstrap,
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
        module = {"faust": "bench.candidates.faust_bare", "aiokafka": "bench.candidates.aiokafka_loop",
                  "quix": "bench.candidates.quix_stateful"}[cand.kind]  # fmt: skip
        if cand.kind == "quix":
            assert b.quix_python is not None
            py = str(b.quix_python)
        # Quix Streams would read QUIX__* settings; none are set here.
        return [py, "-m", module], {**base, **env, "PYTHONPATH": str(REPO)}, prefix, {}

    def markers(self, run_id: str) -> Path:
        return self.bench.work / "logs" / f"{run_id}.markers"

    async def prepare(self, cand: Candidate, extra: dict[str, Any], prefix: str) -> None:
        if cand.is_processor:
            settings = Settings(**{k.removeprefix("SLA_").lower(): v
                                   for k, v in extra["settings"].items()})  # fmt: skip
            await create_processor_topics(settings)
        elif cand.kind == "aiokafka":
            await workload.create_topics(self.bench.bootstrap, [f"{prefix}.out"], PARTITIONS)

    async def throughput(
        self,
        cand: Candidate,
        input_topic: str,
        targets: dict[TopicPartition, int],
        profile: dict[str, Any] | None = None,
        timeout: float = 900.0,
    ) -> Run:
        events = sum(targets.values())
        run_id = uuid.uuid4().hex[:8]
        cmd, env, group, extra = self.spawn(cand, input_topic, events, run_id)
        prefix = f"bench-{run_id}"
        result = Run(cand.key, events)
        result.loadavg_before = [round(x, 2) for x in self.bench.note_load(f"before {cand.key}")]
        try:
            await self.prepare(cand, extra, prefix)
        except Exception as exc:
            result.ok, result.error = False, f"cannot prepare: {exc!r}"[-2000:]
            return result
        log_path = self.bench.work / "logs" / f"{cand.key}-{run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        spy: subprocess.Popen[bytes] | None = None
        samples: list[Sample] = []
        with log_path.open("wb") as log:
            spawned = time.time()
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
        try:
            async with workload.OffsetWatch(self.bench.bootstrap, group, targets) as watch:
                deadline = time.monotonic() + timeout
                while True:
                    samples.append(sample(proc.pid, self.bench.broker_pid))
                    if proc.poll() is not None:
                        raise RuntimeError(f"{cand.key} exited {proc.returncode}: {tail(log_path)}")
                    if profile is not None and spy is None and ready(log_path, cand):
                        spy = start_spy(proc.pid, profile)
                    if await watch.committed() >= events:
                        done = time.time()
                        samples.append(sample(proc.pid, self.bench.broker_pid))
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{cand.key}: not done after {timeout:.0f} s")
                    await asyncio.sleep(0.1)
            hwm = proc_status(proc.pid, "VmHWM")
            result.peak_rss_mib = round(hwm / 2**20, 1) if hwm else None
        except Exception as exc:
            result.ok, result.error = False, str(exc)[-2000:]
            done = time.time()
        finally:
            if spy is not None:
                stop(spy, signal.SIGINT, 60)
            stop(proc, signal.SIGTERM, 30)
        if result.ok:
            await self.read_back(cand, result, log_path, prefix, env, spawned, done, samples)
        await workload.delete_topics_matching(self.bench.bootstrap, prefix)
        shutil.rmtree(self.bench.work / "data" / run_id, ignore_errors=True)
        return result

    async def read_back(self, cand: Candidate, result: Run, log_path: Path, prefix: str,
                        env: dict[str, str], spawned: float, done: float,
                        samples: list[Sample]) -> None:  # fmt: skip
        events = result.events
        text = log_path.read_text(errors="replace")
        markers = self.markers(prefix.removeprefix("bench-"))
        if markers.exists():
            text += "\n" + markers.read_text()
        if cand.is_processor:
            span = await workload.first_last_timestamps(
                self.bench.bootstrap, f"{prefix}-tickets-changelog"
            )
            if span is None:
                result.ok, result.error = False, "empty tickets changelog"
                return
            first, last, _ = span
            outs = [env[k] for k in ("SLA_TOPIC_ESCALATIONS", "SLA_TOPIC_UPDATES_DUE",
                                     "SLA_TOPIC_BREACHES", "SLA_TOPIC_NOTICES")]  # fmt: skip
            result.outputs = await count(self.bench.bootstrap, outs)
            result.dead_letters = await count(
                self.bench.bootstrap, [f"{env['SLA_TOPIC_TICKETS']}.dlq"]
            )
            result.rekeyed = await count(self.bench.bootstrap, [f"{prefix}-rekeyed"])
            result.notes += re.findall(r"BENCH (?:conf-warning|effective) .*", text)
            if "H7TRACE" in text:
                result.notes.append(
                    "worker logged an INFO line per event (H7TRACE in stream.handle)"
                )
        else:
            marks = dict(re.findall(r"BENCH (first|last) ([0-9.]+)", text))
            if "first" not in marks or "last" not in marks:
                result.ok, result.error = False, f"markers missing: {tail(log_path)}"
                return
            first, last = float(marks["first"]), float(marks["last"])
            if cand.kind == "aiokafka":
                result.outputs = await count(self.bench.bootstrap, [env["BENCH_OUTPUT"]])
        result.startup_s = round(first - spawned, 3)
        result.processing_s = round(last - first, 3)
        result.committed_s = round(done - first, 3)
        result.events_per_s = round(events / (done - first), 1)
        result.processing_events_per_s = round(events / max(last - first, 1e-6), 1)
        a, z = at(samples, first), samples[-1]
        wall = max(z.t - a.t, 1e-6)
        result.cpu_s = round(z.candidate - a.candidate, 2)
        result.events_per_cpu_s = round(events / max(result.cpu_s, 0.01), 1)
        broker = z.broker - a.broker
        result.broker_cores = round(broker / wall, 2)
        foreign = (z.machine - a.machine) - result.cpu_s - broker - (z.runner - a.runner)
        result.foreign_cores = round(max(foreign, 0.0) / wall, 2)


def ready(log_path: Path, cand: Candidate) -> bool:
    """The processor's worker has its partitions and has rebuilt its deadline indexes."""
    written = log_path.read_bytes()
    return b"Worker]: Ready" in written and b"deadline indexes rebuilt" in written


def start_spy(pid: int, profile: dict[str, Any]) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(REPO / ".venv/bin")) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    cmd = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(profile.get("rate", 100)),
        "--format",
        profile["format"],
        "--output",
        str(profile["output"]),
    ]
    if profile["format"] == "raw":
        cmd.append("--nolineno")
    profile["started"] = time.time()
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)  # fmt: skip


def stop(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    stop_process(proc, sig, timeout)


async def count(bootstrap: str, topics: list[str]) -> int:
    try:
        ends = await workload.end_offsets(bootstrap, topics)
    except Exception:  # a topic that was never created holds nothing
        return 0
    return sum(ends.values())


# -- memory per open ticket ---------------------------------------------------------------------


async def memory_per_ticket(
    runner: Runner, store: str, tickets: int, trace: bool = False, trim: bool = False
) -> dict[str, Any]:
    """RSS of a worker with 0, tickets/2 and `tickets` open tickets. With `trace`, the worker
    runs under tracemalloc (bench/candidates/processor_tuned.py) and the live Python heap is
    read at each step too: RSS growth beyond it is allocator fragmentation or native memory."""
    bench = runner.bench
    kind = "tuned" if trace or trim else "processor"
    name = f"memory-{store[:-3]}{'-traced' if trace else ''}{'-trimmed' if trim else ''}"
    knobs = {"trim_state": True} if trim else {}
    cand = Candidate(name, f"processor, {store}", kind, store=store, knobs=knobs)
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-{run_id}"
    topic = f"{prefix}.tickets.events"
    await workload.create_topics(bench.bootstrap, [topic], PARTITIONS)
    cmd, env, group, extra = runner.spawn(cand, topic, tickets, run_id)
    trigger = bench.work / "logs" / f"{run_id}.snapshot"
    if trace:
        env["BENCH_TRACEMALLOC"] = str(trigger)
    traced: dict[int, dict[str, Any]] = {}

    async def snapshot(label: int) -> None:
        if not trace:
            return
        trigger.write_text(str(label))
        markers = runner.markers(run_id)
        limit = time.monotonic() + 300
        while time.monotonic() < limit:
            text = markers.read_text() if markers.exists() else ""
            found = re.search(rf"BENCH tracemalloc {label} (.*)", text)
            if found:
                traced[label] = json.loads(found.group(1))
                return
            await asyncio.sleep(0.5)
        raise RuntimeError("no tracemalloc snapshot")

    await runner.prepare(cand, extra, prefix)
    log_path = bench.work / "logs" / f"{cand.key}-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    label = store + (" + trimmed state bytes (bench patch)" if trim else "")
    out: dict[str, Any] = {"store": label, "tickets": tickets,
                           "loadavg_before": list(bench.note_load(f"before {cand.key}"))}  # fmt: skip
    records = workload.open_tickets(tickets, f"MEM{run_id}", workload.utcnow())
    half = tickets // 2
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready(log_path, cand):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready: {tail(log_path)}")
            await asyncio.sleep(0.2)
        rss = {0: await settled_rss(proc.pid)}
        await snapshot(0)
        for upto, batch in ((half, records[:half]), (tickets, records[half:])):
            await workload.produce(bench.bootstrap, topic, batch)
            targets = await workload.end_offsets(bench.bootstrap, [topic])
            async with workload.OffsetWatch(bench.bootstrap, group, targets) as watch:
                limit = time.monotonic() + 900
                while await watch.committed() < upto:
                    if proc.poll() is not None or time.monotonic() > limit:
                        raise RuntimeError(f"worker stopped or too slow: {tail(log_path)}")
                    await asyncio.sleep(0.2)
            rss[upto] = await settled_rss(proc.pid)
            await snapshot(upto)
        out["open_tickets_metric"] = open_tickets_metric(env["SLA_WEB_PORT"])
        out["rss_mib"] = {str(k): round(v / 2**20, 1) for k, v in rss.items()}
        out["bytes_per_ticket"] = round((rss[tickets] - rss[0]) / tickets)
        out["marginal_bytes_per_ticket"] = round((rss[tickets] - rss[half]) / (tickets - half))
        if trace:
            out["traced_bytes_per_ticket"] = round(
                (traced[tickets]["traced"] - traced[0]["traced"]) / tickets
            )
            out["traced_blocks_per_ticket"] = round(
                (traced[tickets]["blocks"] - traced[0]["blocks"]) / tickets, 1
            )
            before = {site: size for site, size, _ in traced[0]["top"]}
            out["traced_top_growth"] = sorted(
                ([site, round((size - before.get(site, 0)) / tickets), n]
                 for site, size, n in traced[tickets]["top"]),
                key=lambda row: -row[1],
            )[:15]  # fmt: skip
        data = Path(env["SLA_DATA_DIR"])
        out["data_dir_mib"] = round(dir_size(data) / 2**20, 1) if data.exists() else 0.0
    except Exception as exc:
        out["error"] = str(exc)[-2000:]
    finally:
        stop(proc, signal.SIGTERM, 30)
        await workload.delete_topics_matching(bench.bootstrap, prefix)
        shutil.rmtree(bench.work / "data" / run_id, ignore_errors=True)
    return out


async def settled_rss(pid: int) -> int:
    """RSS once the worker is idle: the median of 5 readings over 2 s, after 3 s of quiet."""
    await asyncio.sleep(3)
    readings = []
    for _ in range(5):
        value = proc_status(pid, "VmRSS")
        if value is None:
            raise RuntimeError("worker gone")
        readings.append(value)
        await asyncio.sleep(0.5)
    return int(statistics.median(readings))


def open_tickets_metric(port: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith("sla_open_tickets{"))  # fmt: skip


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- profile ------------------------------------------------------------------------------------


def top_functions(raw: Path, top: int = 25) -> dict[str, Any]:
    """Own and inclusive sample shares per function, and own share per package, from py-spy's
    collapsed stacks (`frame;frame;... count`, frames `function (file)`)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    roots: Counter[str] = Counter()  # the outermost frame: which thread the time went to
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]  # fmt: skip
        if not frames:
            continue
        count_ = int(n)
        total += count_
        own[frames[-1]] += count_
        roots[frames[0]] += count_
        packages[package_of(frames[-1])] += count_
        for frame in set(frames):
            inclusive[frame] += count_

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(top)]

    return {
        "samples": total,
        "own_pct": share(own),
        "inclusive_pct": share(inclusive),
        "own_pct_by_package": share(packages),
        "by_root_frame": share(roots),
    }


def package_of(frame: str) -> str:
    match = re.search(r"\(([^)]*)\)\s*$", frame)
    path = match.group(1) if match else frame
    for marker, name in (("site-packages/", None), ("lib/python3", "stdlib")):
        if marker in path:
            rest = path.split(marker, 1)[1]
            if name == "stdlib":
                parts = rest.split("/")
                return "stdlib:" + (parts[1].removesuffix(".py") if len(parts) > 1 else rest)
            return rest.split("/", 1)[0].removesuffix(".py")
    if path.startswith(("processor/", "schemas/", "bench/")) or "/work/" in path:
        return "/".join(path.split("/")[-2:]) if "/" in path else path
    return path.split("/", 1)[0].removesuffix(".py")


# -- reporting ----------------------------------------------------------------------------------


def median_of(runs: list[Run], name: str) -> float | None:
    values = [getattr(r, name) for r in runs if r.ok and getattr(r, name) is not None]
    return round(statistics.median(values), 2) if values else None


SUMMARY_FIELDS = ("events_per_s", "processing_events_per_s", "events_per_cpu_s", "startup_s",
                  "committed_s", "processing_s", "peak_rss_mib", "foreign_cores", "broker_cores",
                  "outputs", "dead_letters", "rekeyed")  # fmt: skip


def summarize(cands: list[Candidate], runs: dict[str, list[Run]]) -> dict[str, Any]:
    out = {}
    for cand in cands:
        rs = runs.get(cand.key, [])
        out[cand.key] = {
            "label": cand.label,
            "store": cand.store if cand.kind not in ("aiokafka",) and cand.table else None,
            "knobs": cand.knobs,
            "median": {f: median_of(rs, f) for f in SUMMARY_FIELDS},
            "runs": [asdict(r) for r in rs],
            "ok_runs": sum(r.ok for r in rs),
        }
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"# Processor end to end{' (QUICK smoke run: not figures)' if r['quick'] else ''}",
        "",
        f"{r['date']} · {r['machine']} · nproc {r['nproc']} · Python {r['python']} · "
        f"Kafka {r['kafka_version']} (single node, loopback) · faust-streaming {r['versions'].get('faust-streaming')}"
        f" · aiokafka {r['versions'].get('aiokafka')} · {r['events']:,} events over {PARTITIONS} partitions"
        f" · median of {r['repeat']} run(s) · command `{r['command'].strip()}`",
        "",
        f"Load: before start {r['load']['at_start']} (1/5/15-min); quiet wait: "
        f"{r['load']['quiet_wait']['waited_s'] if r['load'].get('quiet_wait') else 'not requested'} s"
        f"{'' if not r['load'].get('quiet_wait') or r['load']['quiet_wait']['quiet'] else ' (never got quiet)'}; "
        f"at end {r['load']['at_end']}. `foreign` = CPU cores used by other processes during the "
        "timed window (machine busy minus candidate, broker and runner).",
        "",
        load_summary(r),
        "",
        "**Clock.** " + r["clock"],
        "",
    ]
    if "throughput" in r:
        lines += ["## 1. Throughput", "", *throughput_table(r["throughput"]), ""]
        ratios = r.get("ratios", {})
        lines += [f"- {name}: **{fmt(value, 2)}**" for name, value in ratios.items()] + [""]
    if "knobs" in r:
        lines += [
            "## 1b. Faust knobs on the processor (memory store, bench/candidates/processor_tuned.py)",
            "",
        ]
        lines += [*throughput_table(r["knobs"], control="tuned-none"), ""]
        lines += [f"- {n}" for n in r.get("knob_notes", [])] + [""]
    if "supplementary" in r:
        lines += [
            "## 1c. producer_linger on both sides (run "
            f"{r.get('supplementary_meta', {}).get('date', '?')})",
            "",
            *throughput_table(r["supplementary"], control="faust-table"),
            "",
        ]
        lines += [
            f"- {name}: **{fmt(v[0], 2)}** committed, **{fmt(v[1], 2)}** processing"
            for name, v in r.get("supplementary_ratios", {}).items()
        ]
        lines.append("")
    if "memory" in r:
        lines += ["## 2. Memory per open ticket", "",
                  "| store | tickets | RSS 0 / N/2 / N (MiB) | bytes per ticket (N vs 0) | marginal (N vs N/2) | sla_open_tickets | data dir |",
                  "|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
        for m in r["memory"]:
            if "error" in m:
                lines.append(
                    f"| {m['store']} | {m['tickets']:,} | error: {m['error'][:120]} | | | | |"
                )
                continue
            rss = " / ".join(str(v) for v in m["rss_mib"].values())
            lines.append(
                f"| {m['store']}{' (one run)' if 'note' in m else ''} | {m['tickets']:,} | {rss} | **{fmt(m['bytes_per_ticket'])}**"
                f" | {fmt(m['marginal_bytes_per_ticket'])} | {fmt(m['open_tickets_metric'])}"
                f" | {m['data_dir_mib']} MiB |"
            )
        lines += [
            "",
            "Each figure is the median over the runs listed in processor.json; goal ≤ 1,024 bytes.",
            "",
        ]
    if "memory_traced" in r:
        t = r["memory_traced"]
        if "error" in t:
            lines += [f"tracemalloc run failed: {t['error'][:300]}", ""]
        else:
            lines += [
                f"Under tracemalloc (one run, memory store, {t['tickets']:,} tickets): live Python "
                f"heap **{fmt(t['traced_bytes_per_ticket'])} bytes per ticket** "
                f"({t['traced_blocks_per_ticket']} blocks) against "
                f"{fmt(t['marginal_bytes_per_ticket'])} bytes of RSS (N vs N/2) in the same run. "
                "Biggest growth by allocation site (bytes per ticket, blocks at N):",
                "",
                "| site | bytes/ticket | blocks |",
                "|---|---:|---:|",
            ]
            lines += [f"| `{site}` | {b} | {n:,} |" for site, b, n in t["traced_top_growth"]]
            lines.append("")
    if "profile" in r:
        p = r["profile"]
        lines += ["## 3. Profile (py-spy, processor, memory store, one throughput run)", "",
                  f"{p.get('samples', 0):,} samples at {p.get('rate')} Hz (blocking sampling), idle "
                f"frames excluded; processing ran at "
                f"{fmt((p.get('run') or {}).get('processing_events_per_s'))} events/s under the "
                "profiler; "
                  f"flame graph: `{p.get('svg')}`.", ""]  # fmt: skip
        if "own_pct_by_package" in p:
            lines += ["| samples by outermost frame (thread) | % |", "|---|---:|"]
            lines += [f"| `{n}` | {v} |" for n, v in p.get("by_root_frame", [])[:5]]
            lines += ["", "| own time by package | % |", "|---|---:|"]
            lines += [f"| {n} | {v} |" for n, v in p["own_pct_by_package"][:15]]
            lines += ["", "| own time by function | % |", "|---|---:|"]
            lines += [f"| `{n}` | {v} |" for n, v in p["own_pct"][:20]]
            lines += ["", "| inclusive time by function | % |", "|---|---:|"]
            lines += [f"| `{n}` | {v} |" for n, v in p["inclusive_pct"][:25]]
            lines.append("")
    notes = list(r.get("notes", []))
    for m in r.get("merges", []):
        notes.append(
            f"sections {', '.join(m['sections'])} replaced by `{m['command']}` at {m['date']} "
            f"({m['events']:,} events, median of {m['repeat']}; load at its start "
            f"{m['load']['at_start']}, at its end {m['load'].get('at_end')})"
        )
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)


def load_summary(r: dict[str, Any]) -> str:
    before = [x["loadavg"][0] for x in r["load"].get("log", [])]
    foreign = [
        run["foreign_cores"]
        for section in ("throughput", "knobs", "supplementary")
        for row in r.get(section, {}).values()
        for run in row["runs"]
        if run.get("foreign_cores") is not None
    ]
    if not before:
        return ""
    text = (
        f"1-min load just before each run (our own previous run included): min "
        f"{min(before):.2f}, median {statistics.median(before):.2f}, max {max(before):.2f}."
    )
    if foreign:
        text += (
            f" Other processes' CPU during the timed windows: median "
            f"{statistics.median(foreign):.2f} cores, max {max(foreign):.2f} (of {r['nproc']})."
        )
    return text


def throughput_table(section: dict[str, Any], control: str | None = None) -> list[str]:
    head = ("| candidate | events/s (committed) | events/s (processing) | events per CPU-s | "
            "startup s | peak RSS MiB | foreign cores | outputs | runs (events/s) |")  # fmt: skip
    if control:
        head = head.replace("| runs", "| vs control (committed) | vs control (processing) | runs")
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    control_row = section.get(control or "", {}).get("median", {})
    base = control_row.get("events_per_s")
    base_processing = control_row.get("processing_events_per_s")
    for row in section.values():
        m = row["median"]
        runs = ", ".join(fmt(x["events_per_s"]) if x["ok"] else "failed" for x in row["runs"])
        cells = [row["label"], f"**{fmt(m['events_per_s'])}**", fmt(m["processing_events_per_s"]),
                 fmt(m["events_per_cpu_s"]), fmt(m["startup_s"], 1), fmt(m["peak_rss_mib"]),
                 fmt(m["foreign_cores"], 2), fmt(m["outputs"])]  # fmt: skip
        if control:
            cells.append(fmt(ratio(m["events_per_s"], base), 2))
            cells.append(fmt(ratio(m["processing_events_per_s"], base_processing), 2))
        cells.append(runs)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# -- main ---------------------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    """HEAD and the processor's files that differ from it (read-only git commands)."""

    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return found.stdout.rstrip()

    status = git("status", "--porcelain", "--", "processor", "schemas", "pyproject.toml")
    return {
        "head": git("rev-parse", "HEAD").strip(),
        "modified": [line[3:] for line in status.splitlines() if line.strip()],
    }


def versions() -> dict[str, str]:
    found = {}
    for name in ("faust-streaming", "aiokafka", "mode-streaming", "orjson", "rocksdict", "uvloop",
                 "py-spy"):  # fmt: skip
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


async def main_async(args: argparse.Namespace, bench: Bench, result: dict[str, Any]) -> None:
    runner = Runner(bench)
    policy = load_policy()
    sections = set(args.sections.split(","))
    wanted = set(args.candidates.split(",")) if args.candidates else None
    input_topic = None
    targets: dict[TopicPartition, int] = {}
    if sections & {"throughput", "knobs", "profile", "supplementary"}:
        input_topic = f"bench-input-{uuid.uuid4().hex[:8]}.tickets.events"
        await workload.create_topics(bench.bootstrap, [input_topic], PARTITIONS)
        records = workload.ticket_mix(args.events, policy, workload.utcnow())
        types = Counter(orjson_type(v) for _, v in records)
        seconds = await workload.produce(bench.bootstrap, input_topic, records)
        targets = await workload.end_offsets(bench.bootstrap, [input_topic])
        result["input"] = {"topic": input_topic, "events": sum(targets.values()),
                           "per_partition": [targets[tp] for tp in sorted(targets)],
                           "bytes": sum(len(v) for _, v in records), "types": dict(types),
                           "subjects": len({k for k, _ in records}),
                           "produce_s": round(seconds, 2)}  # fmt: skip
        del records
        print(
            f"bench: {sum(targets.values()):,} events in {input_topic} ({seconds:.1f} s)",
            flush=True,
        )

    def pick(cands: list[Candidate]) -> list[Candidate]:
        chosen = [c for c in cands if wanted is None or c.key in wanted]
        if bench.quix_python is None:
            chosen = [c for c in chosen if c.kind != "quix"]
        return chosen

    async def rounds(cands: list[Candidate]) -> dict[str, list[Run]]:
        runs: dict[str, list[Run]] = {c.key: [] for c in cands}
        for i in range(args.repeat):
            for cand in cands:  # interleaved: drift in the machine's load hits every candidate
                assert input_topic is not None
                run = await runner.throughput(cand, input_topic, targets)
                runs[cand.key].append(run)
                print(f"bench: round {i + 1}/{args.repeat} {cand.key}: "
                      + (f"{run.events_per_s:,.0f} events/s committed, "
                         f"{run.processing_events_per_s:,.0f} processing, startup {run.startup_s} s, "
                         f"foreign {run.foreign_cores} cores" if run.ok else f"FAILED {run.error}"),
                      flush=True)  # fmt: skip
        return runs

    if "throughput" in sections:
        cands = pick(THROUGHPUT)
        result["throughput"] = summarize(cands, await rounds(cands))
        med = {k: v["median"]["events_per_s"] for k, v in result["throughput"].items()}
        proc = {k: v["median"]["processing_events_per_s"] for k, v in result["throughput"].items()}
        result["ratios"] = {
            "processor (memory) / bare Faust with table, committed (goal >= 0.8)":
                ratio(med.get("processor-memory"), med.get("faust-table")),
            "processor (memory) / bare Faust with table, processing":
                ratio(proc.get("processor-memory"), proc.get("faust-table")),
            "processor (memory) / raw aiokafka, committed":
                ratio(med.get("processor-memory"), med.get("aiokafka")),
            "processor (rocksdb) / processor (memory), committed":
                ratio(med.get("processor-rocksdb"), med.get("processor-memory")),
            "bare Faust with table / without, committed":
                ratio(med.get("faust-table"), med.get("faust-bare")),
            "processor (memory) / Quix Streams, committed":
                ratio(med.get("processor-memory"), med.get("quix")),
        }  # fmt: skip
    traced_runs = [
        run
        for section in ("throughput",)
        for row in result.get(section, {}).values()
        for run in row["runs"]
        if any("INFO line per event" in n for n in run["notes"])
    ]
    if traced_runs:
        result["notes"].append("the processor logged one INFO line per event during these runs")
    if "knobs" in sections:
        cands = pick(KNOBS)
        result["knobs"] = summarize(cands, await rounds(cands))
        notes = set()
        for row in result["knobs"].values():
            for run in row["runs"]:
                notes.update(n for n in run["notes"] if "conf-warning" in n)
        result["knob_notes"] = sorted(notes) or [
            "setting app.conf after assemble() raised no warning"
        ]
        effective = {}
        for key, row in result["knobs"].items():
            for run in row["runs"]:
                for n in run["notes"]:
                    if n.startswith("BENCH effective"):
                        effective[key] = json.loads(n.removeprefix("BENCH effective "))
        result["knobs_effective"] = effective
    if "supplementary" in sections:
        cands = pick(SUPPLEMENTARY)
        result["supplementary"] = summarize(cands, await rounds(cands))
        result["supplementary_meta"] = {"date": now_iso(), "load_log_from": len(bench.load_log)}
        med = {k: v["median"] for k, v in result["supplementary"].items()}

        def both(a: str, b: str) -> list[float | None]:
            return [ratio(med.get(a, {}).get(f), med.get(b, {}).get(f))
                    for f in ("events_per_s", "processing_events_per_s")]  # fmt: skip

        result["supplementary_ratios"] = {
            "processor / bare Faust with table, both defaults [committed, processing]": both(
                "processor-memory", "faust-table"
            ),
            "processor / bare Faust with table, both producer_linger=0.05": both(
                "tuned-producer_linger", "faust-table-linger"
            ),
            "bare Faust with table: linger / default": both("faust-table-linger", "faust-table"),
            "processor: linger / default": both("tuned-producer_linger", "processor-memory"),
        }
    if "memory" in sections:
        result["memory"] = []
        for store in ("memory://", "rocksdb://"):
            reps = [
                await memory_per_ticket(runner, store, args.tickets) for _ in range(args.repeat)
            ]
            good = [m for m in reps if "error" not in m]
            if not good:
                result["memory"].append(reps[-1])
                continue
            summary = dict(good[0])
            for k in ("bytes_per_ticket", "marginal_bytes_per_ticket", "data_dir_mib"):
                summary[k] = statistics.median(m[k] for m in good)
            summary["rss_mib"] = {k: statistics.median(m["rss_mib"][k] for m in good)
                                  for k in good[0]["rss_mib"]}  # fmt: skip
            summary["runs"] = reps
            result["memory"].append(summary)
            print(f"bench: memory {store}: {summary['bytes_per_ticket']} bytes/ticket "
                  f"(marginal {summary['marginal_bytes_per_ticket']})", flush=True)  # fmt: skip
        trimmed = await memory_per_ticket(runner, "memory://", args.tickets, trim=True)
        trimmed["runs"] = [dict(trimmed)]
        trimmed["note"] = "one run: a projection of a proposed fix, not a figure of the processor"
        result["memory"].append(trimmed)
        print(f"bench: memory memory:// trimmed: {trimmed.get('bytes_per_ticket')} bytes/ticket"
              f" ({trimmed.get('error', 'ok')})", flush=True)  # fmt: skip
        if not args.no_trace:
            traced = await memory_per_ticket(runner, "memory://", args.tickets, trace=True)
            result["memory_traced"] = traced
            print(f"bench: memory traced: {traced.get('traced_bytes_per_ticket')} live bytes/ticket"
                  f" ({traced.get('error', 'ok')})", flush=True)  # fmt: skip
    if "profile" in sections:
        cand = THROUGHPUT[0]
        out_dir = Path(args.out)
        raw = bench.work / "profile.raw.txt"
        prof: dict[str, Any] = {"rate": 100}
        assert input_topic is not None
        run = await runner.throughput(cand, input_topic, targets,
                                      profile={"format": "raw", "output": raw, "rate": 100})  # fmt: skip
        prof["run"] = asdict(run)
        if raw.exists():
            prof.update(top_functions(raw))
            shutil.copy(raw, out_dir / f"profile{args.suffix}.collapsed.txt")
            prof["collapsed"] = str(out_dir / f"profile{args.suffix}.collapsed.txt")
        svg = out_dir / f"profile{args.suffix}.svg"
        run2 = await runner.throughput(cand, input_topic, targets,
                                       profile={"format": "flamegraph", "output": svg, "rate": 100})  # fmt: skip
        prof["svg_run"] = asdict(run2)
        prof["svg"] = str(svg) if svg.exists() else None
        result["profile"] = prof
    if input_topic is not None:
        await workload.delete_topics_matching(bench.bootstrap, input_topic)


def orjson_type(value: bytes) -> str:
    import orjson

    return str(orjson.loads(value)["type"])


SECTION_KEYS = {
    "throughput": ("throughput", "ratios", "input"),
    "knobs": ("knobs", "knob_notes", "knobs_effective", "input"),
    "memory": ("memory", "memory_traced"),
    "profile": ("profile", "input"),
    "supplementary": ("supplementary", "supplementary_meta", "supplementary_ratios", "input"),
}


def merged(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`base` with the sections `new` ran replaced; the merge is recorded with its own load."""
    ran = [s for s in SECTION_KEYS if any(k in new for k in SECTION_KEYS[s][:1])]
    for section in ran:
        for key in SECTION_KEYS[section]:
            if key in new and (key != "input" or section != "supplementary"):
                base[key] = new[key]
    if "supplementary" in ran and "input" in new:
        base.setdefault("supplementary_meta", {})["input"] = new["input"]
    base.setdefault("merges", []).append(
        {k: new[k] for k in ("date", "command", "load", "git", "events", "repeat")}
        | {"sections": ran}
    )
    base["notes"] = sorted(set(base.get("notes", [])) | set(new.get("notes", [])))
    return base


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each (smoke)")
    parser.add_argument("--out", default="bench/results/", help="directory for the results")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--kafka-version", help="label for --bootstrap's broker version")
    parser.add_argument(
        "--events", type=int, help="throughput input size (default 50,000; quick 5,000)"
    )
    parser.add_argument(
        "--tickets", type=int, help="open tickets for memory (default 100,000; quick 10,000)"
    )
    parser.add_argument("--repeat", type=int, help="runs per figure (default 3; quick 1)")
    parser.add_argument("--sections", default="throughput,knobs,memory,profile")
    parser.add_argument("--merge", action="store_true",
                        help="update only the sections run in an existing processor.json")  # fmt: skip
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the tracemalloc run of the memory section")  # fmt: skip
    parser.add_argument("--candidates", help="comma-separated candidate keys to run (default all)")
    parser.add_argument(
        "--quix-python",
        default=str(REPO / "var/bench-quix-venv/bin/python"),
        help="a python with quixstreams installed (its own venv)",
    )
    parser.add_argument("--wait-quiet", type=float, default=1.0, metavar="LOAD",
                        help="before starting, wait (30 s polls, up to 10 min) for the 1-min load "
                             "to be at most LOAD (default 1.0; negative: do not wait)")  # fmt: skip
    args = parser.parse_args(argv)
    args.events = args.events or (5_000 if args.quick else 50_000)
    args.tickets = args.tickets or (10_000 if args.quick else 100_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.suffix = "-quick" if args.quick else ""
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work = REPO / "var/bench" / stamp
    work.mkdir(parents=True, exist_ok=True)
    started_broker = False
    if args.bootstrap:
        bootstrap, kafka_version, broker_pid = args.bootstrap, args.kafka_version or "unknown", None
        pid_file = REPO / BENCH_DIR / "kafka.pid"
        if bootstrap.endswith(f":{BENCH_PORT}") and pid_file.exists():  # our usual broker
            broker_pid = int(pid_file.read_text().strip())
            kafka_version = (REPO / BENCH_DIR / "kafka.version").read_text().strip()
    else:
        kafka_sh("start", "--port", str(BENCH_PORT), "--dir", BENCH_DIR)
        started_broker = True
        bootstrap = f"127.0.0.1:{BENCH_PORT}"
        kafka_version = (REPO / BENCH_DIR / "kafka.version").read_text().strip()
        broker_pid = int((REPO / BENCH_DIR / "kafka.pid").read_text().strip())
    quix = Path(args.quix_python)
    bench = Bench(bootstrap, kafka_version, broker_pid, work,
                  quix if quix.exists() else None)  # fmt: skip
    result: dict[str, Any] = {
        "benchmark": "processor",
        "quick": args.quick,
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "date": now_iso(),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "nproc": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "kafka_version": kafka_version,
        "versions": versions(),
        "events": args.events,
        "tickets": args.tickets,
        "repeat": args.repeat,
        "clock": CLOCK,
        "load": {"at_start": [round(x, 2) for x in os.getloadavg()]},
        "notes": [],
    }
    result["git"] = git_state()
    if result["git"].get("modified"):
        result["notes"].append(
            "measured on a work tree with uncommitted changes to: "
            + ", ".join(result["git"]["modified"])
        )
    if bench.quix_python is not None:
        found = subprocess.run([str(bench.quix_python), "-c",
                                "import importlib.metadata as m; print(m.version('quixstreams'))"],
                               capture_output=True, text=True)  # fmt: skip
        result["versions"]["quixstreams"] = found.stdout.strip() or "?"
    else:
        result["notes"].append(f"Quix Streams skipped: no {quix}")
    try:
        if args.wait_quiet >= 0:
            result["load"]["quiet_wait"] = wait_quiet(args.wait_quiet, 30, 600)
            result["load"]["at_start"] = [round(x, 2) for x in os.getloadavg()]
        asyncio.run(main_async(args, bench, result))
    finally:
        result["load"]["at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["load"]["log"] = bench.load_log
        if started_broker:
            kafka_sh("stop", "--port", str(BENCH_PORT), "--dir", BENCH_DIR)
        path = out / f"processor{args.suffix}.json"
        if args.merge and path.exists():
            result = merged(json.loads(path.read_text()), result)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        (out / f"processor{args.suffix}.md").write_text(markdown(result) + "\n")
        print(f"bench: wrote {out / f'processor{args.suffix}.json'} and .md", flush=True)


if __name__ == "__main__":
    main()
