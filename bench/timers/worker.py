"""One processor worker of a timer benchmark run: its topics, data dir and successive processes,
and what its log and its web server say about it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import kafka
from bench.results import REPO
from bench.timers.context import Ctx
from bench.workers import DEFAULT_POLICY, PARTITIONS, create_worker_topics, metrics, processor_env
from processor.spawn import WorkerProcess, free_port, tail

READY = "Worker]: Ready"
REBUILT = "deadline indexes rebuilt"


class Worker:
    """One processor worker (its topics, data dir and successive processes)."""

    def __init__(self, ctx: Ctx, store: str, policy: Path = DEFAULT_POLICY) -> None:
        self.ctx = ctx
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"bench-{self.run_id}"
        self.data_dir = ctx.work / "data" / self.run_id
        self.env = processor_env(ctx.bootstrap, self.prefix, self.data_dir, store, policy=policy)
        self.group = self.prefix
        self.input = self.env["SLA_TOPIC_TICKETS"]
        self.breaches = self.env["SLA_TOPIC_BREACHES"]
        self.escalations = self.env["SLA_TOPIC_ESCALATIONS"]
        self.changelog = f"{self.prefix}-tickets-changelog"
        self.ticks = f"{self.prefix}-ticks"
        self.child: WorkerProcess | None = None
        self.log: Path = ctx.work / "logs" / f"{self.prefix}-0.log"
        self.spawned = 0.0
        self.spawns = 0

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    @property
    def port(self) -> str:
        return self.env["SLA_WEB_PORT"]

    async def prepare(self, changelog: bool = False) -> None:
        await create_worker_topics(self.env)
        if changelog:  # as Faust declares it: compacted, the table's partitions
            configs = {"cleanup.policy": "compact"}
            await kafka.create_topics(self.ctx.bootstrap, [self.changelog], PARTITIONS, configs)

    def start(self, store: str | None = None) -> float:
        """Spawn the next process (with `store`, if given); the wall-clock spawn instant."""
        if store is not None:
            self.env["SLA_STORE"] = store
        if "SLA_GROUP_INSTANCE_ID" not in self.env:  # a static member keeps its address:
            self.env["SLA_WEB_PORT"] = str(free_port())  # its broker id names it
        self.spawns += 1
        self.log = self.ctx.work / "logs" / f"{self.prefix}-{self.spawns}.log"
        self.child = WorkerProcess(self.env, self.log, cwd=REPO)
        self.spawned = self.child.start()
        return self.spawned

    async def sibling(self, n: int, timeout: float) -> WorkerProcess:
        """Spawn another member of this worker's group (its own web port and data dir) and wait
        until it owns partitions; the group then shares the partitions between them."""
        env = self.env | {
            "SLA_WEB_PORT": str(free_port()),
            "SLA_DATA_DIR": str(self.data_dir / f"sibling-{n}"),
        }
        log = self.ctx.work / "logs" / f"{self.prefix}-sibling-{n}.log"
        child = WorkerProcess(env, log, cwd=REPO)
        child.start()
        limit = time.monotonic() + timeout
        while not (log.exists() and REBUILT in log.read_text(errors="replace")):
            if child.process is not None and child.process.poll() is not None:
                raise RuntimeError(f"sibling {n} exited: {tail(log)}")
            if time.monotonic() > limit:
                raise RuntimeError(f"sibling {n} owns no partition after {timeout:.0f} s")
            await asyncio.sleep(0.2)
        return child

    def check_alive(self) -> None:
        assert self.child is not None, "not started"
        assert self.child.process is not None, "not started"
        code = self.child.process.poll()
        if code is not None:
            raise RuntimeError(f"worker exited {code}: {tail(self.log)}")

    def lines(self) -> list[dict[str, Any]]:
        """The current process's JSON log lines (other lines skipped)."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return found

    async def ready(self, timeout: float) -> dict[str, Any]:
        """Wait for Ready and the index rebuild; the start-up's timings."""
        limit = time.monotonic() + timeout
        while True:
            self.check_alive()
            lines = self.lines()
            msgs = [str(x.get("msg", "")) for x in lines]
            failed = next((m for m in msgs if "Error in recovery" in m), None)
            if failed is not None:  # Faust logs it for every record it cannot restore, and waits
                raise RuntimeError(f"worker cannot restore its state: {failed}")
            if any(READY in m for m in msgs) and any(REBUILT in m for m in msgs):
                return self.timings(lines)
            if time.monotonic() > limit:
                raise RuntimeError(f"worker not ready after {timeout:.0f} s: {tail(self.log)}")
            await asyncio.sleep(0.2)

    def timings(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        rebuilt = next((x for x in lines if REBUILT in str(x.get("msg", ""))), {})
        return self.restore_phases(lines) | {
            "spawn_to_ready_s": self.since_spawn(lines, READY),
            "spawn_to_rebuilt_s": self.since_spawn(lines, REBUILT),
            "rebuild_seconds": rebuilt.get("seconds"),
            "rebuild_deadlines": rebuilt.get("deadlines"),
        }

    def since_spawn(self, lines: list[dict[str, Any]], marker: str) -> float | None:
        """Seconds from the spawn to the first log line holding `marker`."""
        hit = next((x for x in lines if marker in str(x.get("msg", ""))), None)
        return None if hit is None else round(log_time(hit["ts"]) - self.spawned, 3)

    def restore_phases(self, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """From the log: when Faust started and finished reading the changelogs, and the tickets
        changelog offsets it started reading at (-1: from the start, i.e. a full replay)."""
        lines = self.lines() if lines is None else lines
        starts = next(
            (
                str(x["msg"])
                for x in lines
                if "offsets at start of reading" in str(x.get("msg", ""))
            ),
            "",
        )
        tickets_from, topic = [], ""
        for row in starts.splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[2].lstrip("-").isdigit():
                topic = topic if cells[0] == "〃" else cells[0]
                if topic.endswith("-tickets-changelog"):
                    tickets_from.append(int(cells[2]))
        begin = self.since_spawn(lines, "Restoring state from changelog")
        done = self.since_spawn(lines, "Done reading from changelog")
        return {
            "spawn_to_restore_start_s": begin,
            "spawn_to_restore_done_s": done,
            "changelog_replay_s": round(done - begin, 3) if begin is not None and done else None,
            "tickets_changelog_read_from": tickets_from,
        }

    def loop_stalls(self, since: float, until: float) -> dict[str, Any]:
        """mode's `Timer ... woke up too late, with a drift of +X` lines between two instants: the
        worker's event loop was blocked for about X seconds (Faust's timers sleep 1 s or so)."""
        drifts = []
        for x in self.lines():
            msg = str(x.get("msg", ""))
            if "woke up too late" in msg and since <= log_time(x["ts"]) <= until:
                found = re.search(r"drift of \+([0-9.]+)", msg)
                if found:
                    drifts.append([round(log_time(x["ts"]) - since, 1), round(float(found[1]), 3)])
        return {
            "count": len(drifts),
            "max_s": max((d for _, d in drifts), default=None),
            "first": drifts[:10],
        }

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120.0) -> float:
        """Signal the worker and wait for it; returns the seconds it took to exit."""
        if (
            self.child is None
            or self.child.process is None
            or self.child.process.poll() is not None
        ):
            return 0.0
        started = time.monotonic()
        self.child.stop(sig, timeout)
        return round(time.monotonic() - started, 3)

    def metrics(self) -> dict[str, Any]:
        return metrics(self.port)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=10
            ) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    async def cleanup(self) -> None:
        self.stop(signal.SIGTERM, 60)
        await kafka.delete_topics_matching(self.ctx.bootstrap, self.prefix)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def log_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
