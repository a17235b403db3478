"""The HTTP ingest under load: wrk against `sla-processor ingest`, Kafka's acknowledgement included.

    python -m bench.ingest [--quick] [--repeat 3] [--duration 20] [--connections 1,8,32]
                           [--modes structured,batched,zendesk] [--batch 100]
                           [--bootstrap HOST:PORT] [--out DIR]

One ingest process (topics of its own, a free port, WARNING logs) on the benchmark's broker;
wrk (bench/ingest_wrk.lua, every event with an id and a subject of its own) posts for a fixed
time at each connection count, in three modes: structured CloudEvents (one ticket.opened a
request), batched (BATCH of them a request) and Zendesk's ticket.created webhook. Each run
records requests/s, events/s, wrk's latency percentiles (request sent to answer read, the
acknowledgement by Kafka included), the answers by status (every one must be 2xx), the records
the tickets topic gained (at least the events answered 2xx) and the CPU of the ingest, the
broker and wrk. The rounds go through every measurement in turn, --repeat times; the report
gives the medians. Starts its own broker (port 29292, var/kafka-ingest) unless --bootstrap is
given. Writes <out>/ingest.json and <out>/ingest.md (--quick: ingest-quick.*, 5 s runs, once).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import resource
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import machine, results
from bench.broker import broker
from bench.results import REPO, fmt
from bench.workers import PARTITIONS, create_worker_topics, metrics, processor_env
from processor.ingest.binding import BATCH as BATCH_TYPE
from processor.spawn import WorkerFailed, WorkerProcess, free_port, tail
from schemas.cloudevents import STRUCTURED
from tests.ingest.flows import sample

PORT = 29292
BROKER_DIR = "var/kafka-ingest"
LUA = REPO / "bench" / "ingest_wrk.lua"
INGEST_COMMAND = (sys.executable, "-m", "processor", "ingest")
THREADS = 2  # wrk threads at most: the benchmark host has 2 cores
WRK_TIMEOUT_S = 15  # above the ingest's 10 s send timeout: a slow answer is a 503, not lost
FOREIGN = 0.3  # cores of other work in a run worth a note
SETTLE_S = 2.0  # after a run, for the records of the requests cut off at its end to land
FIELDS = (
    "requests_per_s", "events_per_s", "latency_ms.p50", "latency_ms.p90", "latency_ms.p99",
    "latency_ms.max", "non_2xx", "records_minus_2xx_events", "server_mean_ms",
    "cpu_cores.ingest", "cpu_cores.broker", "cpu_cores.wrk", "cpu_cores.machine",
    "cpu_cores.foreign",
)  # fmt: skip
CLOCK = (
    "Latency is wrk's: from writing a request to reading its answer on a kept-alive connection; "
    "the ingest answers 202 only once Kafka acknowledged every record (acks=all, idempotent "
    "producer), so it includes the broker's write. wrk is a closed loop (each connection sends "
    "its next request when the previous is answered, no coordinated-omission correction). "
    "Server mean = the ingest's own sla_ingest_request_seconds (read to answer) over the run. "
    "CPU from /proc (utime+stime) over the run, in cores (1.0 = one core busy): the ingest, the "
    "broker (its JVM), wrk (this runner's reaped children) and the whole machine (busy time of "
    "/proc/stat: user, system, interrupts, steal); foreign = the machine minus those three and "
    "this runner (other work on the host, and the kernel's share of loopback networking). wrk, "
    "the ingest and the broker share the machine's cores."
)


@dataclass(frozen=True)
class Mode:
    name: str
    path: str
    content_type: str
    template: str  # one event (or payload); the Lua script sets __ID__ and __TIME__ per event
    events: int  # events a request
    array: bool  # the body is a JSON array of them (batched mode)


def ticket_opened() -> str:
    return orjson.dumps({
        "specversion": "1.0", "id": "__ID__", "source": "bench/ingest", "type": "ticket.opened",
        "subject": "T-__ID__", "time": "__TIME__",
        "data": {"customer_id": "C-1042", "support_tier": "premium", "severity": "high"},
    }).decode()  # fmt: skip


def zendesk_created() -> str:
    """Zendesk's documented ticket.created, as a premium HIGH ticket of its own per request
    (mapped to a ticket.opened with id zendesk:<id>:opened, subject <id>)."""
    payload = sample("zendesk/ticket_created.json")
    payload |= {"id": "__ID__", "time": "__TIME__", "subject": "zen:ticket:__ID__"}
    payload["detail"] |= {"id": "__ID__", "priority": "HIGH", "tags": ["sla_premium"]}
    return orjson.dumps(payload).decode()


def modes(batch: int) -> dict[str, Mode]:
    return {
        "structured": Mode("structured", "/events", STRUCTURED, ticket_opened(), 1, False),
        "batched": Mode("batched", "/events", BATCH_TYPE, ticket_opened(), batch, True),
        "zendesk": Mode("zendesk", "/webhooks/zendesk", "application/json", zendesk_created(),
                        1, False),
    }  # fmt: skip


@dataclass
class Ctx:
    bootstrap: str
    broker_pid: int | None
    work: Path
    env: dict[str, str]
    ingest: WorkerProcess
    duration: int
    load: machine.LoadLog = field(default_factory=machine.LoadLog)

    @property
    def port(self) -> str:
        return self.env["SLA_INGEST_PORT"]

    @property
    def topic(self) -> str:
        return self.env["SLA_TOPIC_TICKETS"]


# -- the ingest and the topic -------------------------------------------------------------------


def start_ingest(ctx: Ctx, timeout: float = 60.0) -> None:
    """Spawn the ingest and wait until GET /readyz answers 200 (its producer is connected)."""
    ctx.ingest.start()
    deadline = time.monotonic() + timeout
    while not ready(ctx.port):
        process = ctx.ingest.process
        if process is None or process.poll() is not None or time.monotonic() > deadline:
            raise WorkerFailed(f"ingest not ready:\n{tail(ctx.ingest.log)}")
        time.sleep(0.2)


def ready(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


async def records(bootstrap: str, topic: str) -> int:
    """The records of `topic`: its end offsets summed (nothing is ever deleted from it here)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


# -- one run ------------------------------------------------------------------------------------


def wrk(ctx: Ctx, mode: Mode, connections: int, prefix: str, seconds: int) -> dict[str, Any]:
    """What done() of bench/ingest_wrk.lua printed for one wrk run."""
    template = ctx.work / f"{mode.name}.json"
    template.write_text(mode.template)
    command = [
        "wrk", f"--threads={min(THREADS, connections)}", f"--connections={connections}",
        f"--duration={seconds}s", f"--timeout={WRK_TIMEOUT_S}s", f"--script={LUA}",
        f"http://127.0.0.1:{ctx.port}{mode.path}",
        "--", str(template), prefix, str(mode.events), str(int(mode.array)), mode.content_type,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    found: dict[str, Any] = orjson.loads(line.removeprefix("RESULT "))
    return found


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(ctx: Ctx, mode: Mode, connections: int, prefix: str, seconds: int) -> dict[str, Any]:
    """One wrk run of `mode` at `connections`, with the CPU, records and metrics around it."""
    ctx.load.note(prefix)
    records_before = asyncio.run(records(ctx.bootstrap, ctx.topic))
    metrics_before = metrics(ctx.port)
    before, wrk_before = machine.sample(ctx.ingest.pid or 0, ctx.broker_pid), children_cpu()
    got = wrk(ctx, mode, connections, prefix, seconds)
    after, wrk_after = machine.sample(ctx.ingest.pid or 0, ctx.broker_pid), children_cpu()
    time.sleep(SETTLE_S)
    added = asyncio.run(records(ctx.bootstrap, ctx.topic)) - records_before
    served = {k: metrics(ctx.port).get(k, 0.0) - metrics_before.get(k, 0.0) for k in (
        "sla_ingest_events_total", "sla_ingest_request_seconds_sum",
        "sla_ingest_request_seconds_count")}  # fmt: skip
    wall = after.t - before.t
    used = {
        "ingest": (after.candidate - before.candidate) / wall,
        "broker": (after.broker - before.broker) / wall,
        "wrk": (wrk_after - wrk_before) / wall,
        "runner": (after.runner - before.runner) / wall,
    }
    busy = (after.machine - before.machine) / wall
    cpu: dict[str, float | None] = {**used, "machine": busy, "foreign": busy - sum(used.values())}
    if ctx.broker_pid is None:
        cpu["broker"] = None  # not known: in `foreign`
    return figures(got, mode, connections, added, served) | {
        "prefix": prefix,
        "cpu_cores": {k: None if v is None else round(v, 2) for k, v in cpu.items()},
    }


def figures(
    got: dict[str, Any], mode: Mode, connections: int, added: int, served: dict[str, float]
) -> dict[str, Any]:
    seconds = got["duration_us"] / 1e6
    ok = sum(n for code, n in got["statuses"].items() if code.startswith("2"))
    count = served["sla_ingest_request_seconds_count"]
    return {
        "mode": mode.name, "connections": connections, "events_per_request": mode.events,
        "seconds": round(seconds, 2), "requests": got["requests"], "answered_2xx": ok,
        "non_2xx": sum(got["statuses"].values()) - ok, "statuses": got["statuses"],
        "errors": got["errors"],
        "requests_per_s": round(got["requests"] / seconds, 1),
        "events_per_s": round(ok * mode.events / seconds, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in got["latency_us"].items()},
        "server_mean_ms": round(1000 * served["sla_ingest_request_seconds_sum"] / count, 2)
        if count else None,
        "events_2xx": ok * mode.events, "records_added": added,
        "records_minus_2xx_events": added - ok * mode.events,
        "ingest_events_published": int(served["sla_ingest_events_total"]),
    }  # fmt: skip


# -- the rounds ---------------------------------------------------------------------------------


def measure(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    """A warm-up, then --repeat rounds of every (mode, connections); runs and medians by mode."""
    chosen = [modes(args.batch)[name] for name in args.modes]
    found: dict[str, Any] = {"warmup": run(ctx, chosen[0], 8, f"{ctx.work.name}-warmup", 3)}
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(args.repeat):
        for mode in chosen:
            for c in args.connections:
                prefix = f"{ctx.work.name}-{mode.name}-c{c}-r{r + 1}"
                runs.setdefault((mode.name, c), []).append(run(ctx, mode, c, prefix, ctx.duration))
                print(f"ingest: {prefix}: {runs[mode.name, c][-1]['requests_per_s']} req/s",
                      flush=True)  # fmt: skip
    found["modes"] = {
        name: {
            str(c): {"median": {f: results.median_field(rs, f) for f in FIELDS}, "runs": rs}
            for (n, c), rs in runs.items()
            if n == name
        }
        for name in args.modes
    }
    return found


def topic_check(ctx: Ctx, found: dict[str, Any]) -> dict[str, Any]:
    """The tickets topic against every event answered 2xx, the warm-up's too."""
    every = [found["warmup"]] + [
        r for by_c in found["modes"].values() for m in by_c.values() for r in m["runs"]
    ]
    answered = sum(r["events_2xx"] for r in every)
    held = asyncio.run(records(ctx.bootstrap, ctx.topic))
    return {"topic": ctx.topic, "records": held, "events_answered_2xx": answered,
            "records_minus_answered": held - answered, "ok": held >= answered}  # fmt: skip


# -- the report ---------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    p, check = result["params"], result["topic_check"]
    lines = [
        "# The HTTP ingest under load (bench/ingest.py)", "",
        f"{result['date']}, commit {result['git']['head'][:7]}, {result['nproc']} cores, Python "
        f"{result['python']}, Kafka {result['kafka_version']}, {result['versions'].get('wrk')}, "
        f"aiohttp {result['versions'].get('aiohttp')}.", "",
        f"wrk ({p['threads_max']} threads at most) for {p['duration_s']} s a run, medians of "
        f"{p['repeat']} run(s); batched: {p['batch']} events a request. One ingest process, "
        f"tickets topic of {PARTITIONS} partitions, one broker; wrk, the ingest and the broker "
        f"share the {result['nproc']} cores. Latency in ms; CPU in cores.", "",
        "| mode | conns | requests/s | events/s | p50 | p90 | p99 | max | server mean | non-2xx "
        "| records - 2xx events | CPU ingest | CPU broker | CPU wrk | CPU machine | CPU foreign |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]  # fmt: skip
    for name, by_c in result["modes"].items():
        for c, m in by_c.items():
            lines.append(row(name, c, m["median"]))
    lines += [
        "",
        f"Topic check: {check['topic']} holds {check['records']:,} records for "
        f"{check['events_answered_2xx']:,} events answered 2xx (warm-up included): "
        f"{'at least as many' if check['ok'] else 'FEWER'} "
        f"({check['records_minus_answered']:+,}: requests cut off at a run's end that Kafka "
        "took anyway).", "",
        result["clock"],
    ]  # fmt: skip
    lines += ["", *[f"- {n}" for n in result["notes"]]] if result["notes"] else []
    return "\n".join(lines) + "\n"


def row(name: str, connections: str, m: dict[str, Any]) -> str:
    cells = [
        name, connections, fmt(m["requests_per_s"]), fmt(m["events_per_s"]),
        fmt(m["latency_ms.p50"], 2), fmt(m["latency_ms.p90"], 2), fmt(m["latency_ms.p99"], 2),
        fmt(m["latency_ms.max"], 1), fmt(m["server_mean_ms"], 2), fmt(m["non_2xx"]),
        fmt(m["records_minus_2xx_events"]), fmt(m["cpu_cores.ingest"], 2),
        fmt(m["cpu_cores.broker"], 2), fmt(m["cpu_cores.wrk"], 2),
        fmt(m["cpu_cores.machine"], 2), fmt(m["cpu_cores.foreign"], 2),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


# -- the command --------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add = parser.add_argument
    add("--quick", action="store_true", help="5 s runs, one each: a smoke check")
    add("--duration", type=int, help="seconds a run (default 20; quick 5)")
    add("--repeat", type=int, help="runs per figure (default 3; quick 1)")
    add("--connections", default="1,8,32", help="wrk connections, comma-separated")
    add("--modes", default="structured,batched,zendesk", help="any of structured,batched,zendesk")
    add("--batch", type=int, default=100, help="events a batched request (default 100)")
    add("--bootstrap", help="use this broker instead of starting one")
    add("--kafka-version", help="label for --bootstrap's broker version")
    add("--out", default="bench/results/", help="directory for the results")
    add("--wait-quiet", type=float, default=1.0, metavar="LOAD",
        help="before starting, wait (30 s polls, up to 10 min) for the 1-min load to be at "
        "most LOAD (default 1.0; negative: do not wait)")  # fmt: skip
    args = parser.parse_args(argv)
    args.duration = args.duration or (5 if args.quick else 20)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.connections = [int(c) for c in args.connections.split(",")]
    args.modes = args.modes.split(",")
    if unknown := set(args.modes) - set(modes(1)):
        parser.error(f"unknown mode: {', '.join(sorted(unknown))}")
    return args


def versions() -> dict[str, str]:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    shown = done.stdout or done.stderr
    return {"aiohttp": importlib.metadata.version("aiohttp"),
            "wrk": " ".join(shown.split()[:2])}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    run_id = f"ingest-{uuid.uuid4().hex[:8]}"
    work = REPO / "var" / "bench-ingest" / run_id
    work.mkdir(parents=True, exist_ok=True)
    params = {"duration_s": args.duration, "repeat": args.repeat, "batch": args.batch,
              "connections": args.connections, "modes": args.modes, "threads_max": THREADS,
              "wrk_timeout_s": WRK_TIMEOUT_S, "partitions": PARTITIONS}  # fmt: skip
    result = results.head("ingest", "python -m bench.ingest", argv, quick=args.quick,
                          params=params, clock=CLOCK)  # fmt: skip
    result["versions"] |= versions()
    with broker(args.bootstrap, args.kafka_version, PORT, BROKER_DIR) as kafka:
        result["kafka_version"] = kafka.version
        env = processor_env(kafka.bootstrap, run_id, work, log_level="WARNING")
        env["SLA_INGEST_PORT"] = str(free_port())
        asyncio.run(create_worker_topics(env))
        ingest = WorkerProcess(env, work / "ingest.log", INGEST_COMMAND, cwd=REPO)
        ctx = Ctx(kafka.bootstrap, kafka.pid, work, env, ingest, args.duration)
        results.wait_quiet(result, args.wait_quiet)
        start_ingest(ctx)
        try:
            result |= measure(ctx, args)
            result["topic_check"] = topic_check(ctx, result)
        finally:
            result["ingest_exit"] = ingest.stop()
    finish(args, result, ctx)


def finish(args: argparse.Namespace, result: dict[str, Any], ctx: Ctx) -> None:
    result["load"] |= {"at_end": machine.loadavg(), "log": ctx.load.entries}
    bad = [f"{m} at {c}" for m, by_c in result["modes"].items() for c, f in by_c.items()
           if any(r["non_2xx"] or any(r["errors"].values()) for r in f["runs"])]  # fmt: skip
    if bad:
        result["notes"].append("non-2xx answers or wrk errors in: " + ", ".join(bad))
    busy = [f"{r['prefix']} ({r['cpu_cores']['foreign']})" for by_c in result["modes"].values()
            for f in by_c.values() for r in f["runs"] if r["cpu_cores"]["foreign"] > FOREIGN]  # fmt: skip
    if busy:
        result["notes"].append(
            f"runs with more than {FOREIGN} cores of foreign CPU: " + ", ".join(busy)
        )
    result["notes"].append(
        f"wrk, the ingest and the broker share the machine's {result['nproc']} cores: the "
        "figures are those of one host doing everything, not of the ingest alone"
    )
    stem = "ingest-quick" if args.quick else "ingest"
    path = results.write(Path(args.out), stem, result, markdown)
    print(markdown(result))
    print(f"ingest: wrote {path} and .md", flush=True)


if __name__ == "__main__":
    main()
