"""What the runner sends while a worker is measured: ordinary events at a steady rate (Pacer),
and probes whose answers time the event path (Prober)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from bench import workload
from bench.kafka import Output, Record, cancel
from bench.results import percentiles
from bench.timers.context import at_ms, now_s


class Pacer:
    """Sends `records` to `topic` at `rate` per second (in 10 ms slices) until stopped."""

    def __init__(self, bootstrap: str, topic: str, records: Sequence[Record], rate: float) -> None:
        self.bootstrap, self.topic, self.records, self.rate = bootstrap, topic, records, rate
        self.sent = 0
        self.started = 0.0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await self.producer.start()
        self.task = asyncio.create_task(self._pace())

    async def _pace(self) -> None:
        self.started = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        while self.sent < len(self.records):
            target = min(len(self.records), int((time.monotonic() - self.started) * self.rate))
            while self.sent < target:
                key, value = self.records[self.sent]
                pending.append(await self.producer.send(self.topic, value, key=key))
                self.sent += 1
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending.clear()
            await asyncio.sleep(0.01)
        await asyncio.gather(*pending)

    async def stop(self) -> dict[str, Any]:
        stopped = time.monotonic()
        await cancel(self.task)
        self.task = None
        await self.producer.stop()
        seconds = max(stopped - self.started, 1e-6)
        return {
            "sent": self.sent,
            "seconds": round(seconds, 1),
            "events_per_s": round(self.sent / seconds),
        }


class Prober:
    """One urgent premium ticket.opened every `interval` s: its escalation step 1 is emitted from
    the event itself, so (escalation CreateTime - send time) is the event path's latency."""

    def __init__(self, bootstrap: str, topic: str, prefix: str, interval: float = 0.1) -> None:
        self.bootstrap, self.topic, self.prefix, self.interval = bootstrap, topic, prefix, interval
        self.sent: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self.producer.start()
        self.task = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        started = time.monotonic()
        n = 0
        while True:
            subject = f"{self.prefix}-{n:06d}"
            sent = now_s()
            value = workload.opened(subject, at_ms(sent), "urgent", "premium", "C-probe")
            self.sent[subject] = sent
            await self.producer.send(self.topic, value, key=subject.encode())
            n += 1
            await asyncio.sleep(max(0.0, started + n * self.interval - time.monotonic()))

    async def stop(self) -> None:
        if self.task is None:
            return
        await cancel(self.task)
        self.task = None
        await self.producer.stop()

    def latencies(
        self, outputs: Sequence[Output], since: float = 0.0, until: float = math.inf
    ) -> dict[str, Any]:
        """Escalation timestamp minus send time, for probes sent in [since, until]."""
        emitted = {key.decode(): ts / 1000 for _, key, ts, _ in outputs}
        window = {s: t for s, t in self.sent.items() if since <= t <= until}
        lat = [emitted[s] - t for s, t in window.items() if s in emitted]
        return {
            **percentiles([x * 1000 for x in lat], ("p50", "p99", "max")),
            "probes": len(lat),
            "unanswered": sum(1 for s in window if s not in emitted),
        }
