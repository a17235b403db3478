"""The worker: the Faust app with its agent, hooks, deadline loop, metrics and web views."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import faust
from faust.types import TP, EventT, StreamT
from prometheus_client import CollectorRegistry

from processor import faust_fixes, web
from processor.faust_fixes.internals import committed_offset
from processor.local_state import discard_unsafe_local_state, mark_clean_stop
from processor.logs import logging_config
from processor.metrics import Gauges, Metrics
from processor.settings import Settings
from processor.sla.policy import Policy, load_policy
from processor.stream import SlaStream
from processor.timers import tick_loop
from processor.topology import Topology, build

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Handler(Protocol):
    async def handle(self, event: EventT[bytes]) -> None: ...


async def handle_each(stream: Handler, events: AsyncIterable[EventT[bytes]]) -> None:
    """The agent: every record to the stream; one that fails is logged (ids only) and the next
    one goes on, so one bad record never stops the agent."""
    async for event in events:
        try:
            await stream.handle(event)
        except Exception:
            log.exception(
                "record failed",
                extra={
                    "topic": event.message.topic,
                    "partition": event.message.partition,
                    "offset": event.message.offset,
                },
            )


def assemble(
    settings: Settings,
    policy: Policy,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[Topology, SlaStream]:
    """Build the Faust app with its agent, hooks, timer task and web views."""
    topology = build(settings)
    app = topology.app
    metrics = Metrics(registry)
    stream = SlaStream(topology, policy, metrics, clock)
    faust_fixes.apply(
        app,
        record_lock=stream.record_lock,
        on_fetched=stream.on_fetched,
        on_seek=stream.on_seek,
        source_topics=topology.source.topics,
    )
    ticks_topic = topology.ticks.get_topic_name()

    async def sla(records: StreamT[bytes]) -> None:
        await handle_each(stream, records.events())

    app.agent(topology.source, name="sla")(sla)

    def owned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == ticks_topic}

    async def on_recover() -> None:
        stream.rebuild(owned())
        stream.holds.warm_end_offsets()

    topology.tickets.on_recover(on_recover)

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        stream.release({tp.partition for tp in revoked if tp.topic == ticks_topic})

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]  # mode passes signal= as a keyword

    async def deadlines() -> None:
        await tick_loop(
            stream.deadlines, stream, paused=lambda: bool(app.rebalancing or app.in_recovery)
        )

    app.task(deadlines)

    async def close_end_offsets(sender: Any, **kwargs: Any) -> None:
        await stream.end_offsets.close()

    app.on_before_shutdown.connect(close_end_offsets)  # type: ignore[arg-type]  # as on_revoked

    metrics.watch(
        Gauges(
            open_tickets=stream.states.open_totals,
            pending_deadlines=stream.deadlines.pending,
            consumer_lag=lambda: _lag(app),
            held_partitions=lambda: len(stream.deadlines.held()),
            oldest_hold=lambda: stream.deadlines.oldest_hold(time.monotonic()),
        )
    )
    web.install(topology, policy, metrics.registry, clock)
    return topology, stream


def _lag(app: faust.App) -> dict[tuple[str, int], int]:
    lag: dict[tuple[str, int], int] = {}
    try:
        consumer = app.consumer
        for tp in consumer.assignment():
            committed = committed_offset(consumer, tp)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag[(tp.topic, tp.partition)] = max(highwater - (committed or 0), 0)
    except Exception:  # the consumer may be rebalancing; a scrape must not fail for it
        log.debug("consumer lag unavailable", exc_info=True)
    return lag


def run(settings: Settings) -> int:
    """Run a worker until it stops; the exit code."""
    policy = load_policy(settings.policy_file)
    # Faust creates only the last level of its data directory (the default is var/...).
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topology, _ = assemble(settings, policy)
    discarded = discard_unsafe_local_state(settings, Path(topology.app.conf.tabledir))
    worker = faust.Worker(
        topology.app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level),
        quiet=True,
    )
    if discarded:
        log.info("local table state discarded: restored from the changelogs", extra=discarded)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        # Only a clean at-least-once stop leaves local tables that Kafka backs (local_state).
        if exc.code in (0, None):
            mark_clean_stop(settings)
        raise
    return 0
