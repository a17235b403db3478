"""The CPU and memory of the worker, the broker, this runner and the rest of the machine while a
worker is measured, from /proc samples every 0.25 s."""

from __future__ import annotations

import asyncio
from typing import Any

from bench import machine
from bench.kafka import cancel


class Sampler:
    """/proc samples of the followed worker process, the broker, this runner and the machine."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self.samples: list[tuple[machine.Sample, int | None, int]] = []  # sample, RSS, pid
        self.pid: int | None = None
        self.task: asyncio.Task[None] | None = None

    def follow(self, pid: int | None) -> None:
        self.pid = pid
        if self.task is None:
            self.task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            if self.pid is not None:
                rss = machine.proc_status(self.pid, "VmRSS")
                self.samples.append((machine.sample(self.pid, self.broker_pid), rss, self.pid))
            await asyncio.sleep(0.25)

    async def stop(self) -> None:
        await cancel(self.task)
        self.task = None

    def usage(self, since: float, until: float) -> dict[str, Any]:
        """Cores used by each party between two instants, and the worker's peak RSS."""
        # Only the process sampled last (a restart changes the pid: its CPU starts again at 0).
        window = [x for x in self.samples if since - 0.3 <= x[0].t <= until + 0.3]
        inside = [(s, r) for s, r, p in window if p == window[-1][2]] if window else []
        if len(inside) < 2:
            return {}
        (a, _), (z, _) = inside[0], inside[-1]
        wall = max(z.t - a.t, 1e-6)
        worker, broker, runner = (
            z.candidate - a.candidate,
            z.broker - a.broker,
            z.runner - a.runner,
        )
        foreign = (z.machine - a.machine) - worker - broker - runner
        rss = [r for _, r in inside if r]
        return {
            "seconds": round(wall, 1),
            "worker_cores": round(worker / wall, 2),
            "broker_cores": round(broker / wall, 2),
            "runner_cores": round(runner / wall, 2),
            "foreign_cores": round(max(foreign, 0.0) / wall, 2),
            "worker_peak_rss_mib": round(max(rss) / 2**20, 1) if rss else None,
        }

    def busy_profile(self, since: float, until: float, step: float = 1.0) -> list[float]:
        """The worker's cores per `step` seconds over [since, until] (a CPU time line)."""
        points = [s for s, _, _ in self.samples if since <= s.t <= until]
        out = []
        t = since
        while t + step <= until and points:
            a = machine.at(points, t)
            b = machine.at(points, t + step)
            if b.t > a.t:
                out.append(round((b.candidate - a.candidate) / (b.t - a.t), 2))
            t += step
        return out
