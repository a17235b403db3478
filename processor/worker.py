"""The worker: the Faust app with its agent, hooks, deadline loop, metrics and web views."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

import faust
from faust.types import TP, EventT, StreamT
from prometheus_client import CollectorRegistry

from processor import faust_fixes, web
from processor.faust_fixes.internals import committed_offset
from processor.faust_fixes.recovery_stall import watch_recovery
from processor.faust_fixes.stream_batches import done, take_waiting
from processor.health import Facts
from processor.local_state import discard_unsafe_local_state, mark_clean_stop
from processor.logs import logging_config
from processor.metrics import Gauges, Metrics
from processor.outages import OUTAGES
from processor.settings import ConfigError, Settings
from processor.sla.engine import Policies, as_set
from processor.sla.policy_set import load_policies
from processor.stream import SlaStream
from processor.timers import tick_loop
from processor.topics import PartitionMismatch, check_partitions, mismatch_error, mismatches
from processor.topology import Topology, build, copartitioned

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Handler(Protocol):
    async def handle_batch(self, events: Sequence[EventT[bytes]]) -> None: ...


# Records taken with the one Faust yields, at most (those already waiting in the agent's
# channel): the stream applies them as one batch, its table writes sent together.
BATCH = 200


def stop_at_once(code: int) -> NoReturn:
    """End the process now, as a SIGKILL would: nothing more is acknowledged or committed."""
    logging.shutdown()
    os._exit(code)


async def handle_each(
    stream: Handler,
    records: Any,
    batch: int = BATCH,
    stop: Callable[[int], NoReturn] = stop_at_once,
) -> None:
    """The agent: each record Faust's stream yields, with the records already waiting behind it
    (up to `batch` in all), to the stream as one batch; the stream logs a record that fails
    (ids only) and goes on. The records taken beside Faust's are acknowledged after the
    batch, as Faust acknowledges its own (`faust_fixes.stream_batches`).

    A batch that fails as a whole could not hand its table writes to the producer: its
    states are in the local store and not in the changelogs. Acknowledging it would let a
    commit pass records whose state is lost, so the worker stops at once (exit code 1, a
    CRITICAL line with the first record's ids): nothing of the batch is committed, and a
    restart reads it again on the state the changelogs hold, as after a SIGKILL.
    """
    events = records.events() if hasattr(records, "events") else records
    async for event in events:
        taken = take_waiting(records, batch - 1) if hasattr(records, "channel") else []
        try:
            await stream.handle_batch((event, *(t.event for t in taken)))
        except Exception:
            log.critical(
                "batch's table writes not sent: stopping",
                exc_info=True,
                extra={
                    "topic": event.message.topic,
                    "partition": event.message.partition,
                    "offset": event.message.offset,
                    "records": 1 + len(taken),
                },
            )
            stop(1)
        for each in taken:
            done(records, each)


def assemble(
    settings: Settings,
    policies: Policies,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[Topology, SlaStream]:
    """Build the Faust app with its agent, hooks, timer task and web views."""
    topology = build(settings)
    app = topology.app
    book = as_set(policies)
    metrics = Metrics(registry)
    for policy in book.all_policies():
        metrics.expect(policy)
    stream = SlaStream(topology, book, metrics, clock)
    faust_fixes.apply(
        app,
        record_lock=stream.record_lock,
        on_fetched=stream.on_fetched,
        on_seek=stream.on_seek,
        source_topics=topology.source.topics,
    )
    ticks_topic = topology.ticks.get_topic_name()

    async def sla(records: StreamT[bytes]) -> None:
        await handle_each(stream, records)

    app.agent(topology.source, name="sla")(sla)

    def owned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == ticks_topic}

    async def on_recover() -> None:
        stream.rebuild(owned())
        stream.holds.warm_end_offsets()

    topology.tickets.on_recover(on_recover)

    joined: list[bool] = []  # an assignment came (readiness)

    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        joined[:] = [True]
        # Before the records of the new assignment flow (Faust resumes them after recovery).
        # An input topic expanded while the worker runs shows here: the consumer's metadata
        # changed, and that made it rejoin. Raising crashes the app: it stops, committing only
        # what it processed before.
        expected = settings.topic_partitions
        counts = {name: app.consumer.topic_partitions(name) for name in copartitioned(settings)}
        found = mismatches(expected, counts)
        if found:
            log.critical(
                "partition counts differ: stopping", extra={"topics": found, "expected": expected}
            )
            raise mismatch_error(expected, found)

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]  # as on_revoked

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        stream.release({tp.partition for tp in revoked if tp.topic == ticks_topic})

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]  # mode passes signal= as a keyword

    async def deadlines() -> None:
        await tick_loop(
            stream.deadlines, stream, paused=lambda: bool(app.rebalancing or app.in_recovery)
        )

    app.task(deadlines)

    # Started with the first assignment: Faust starts the app's own tasks only once the first
    # recovery is done, and that recovery is one the watch must see.
    watching: list[asyncio.Task[None]] = []

    async def watch_recoveries(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        if not watching:
            watching.append(
                asyncio.ensure_future(watch_recovery(app, on_stall=metrics.recovery_stalls.inc))
            )

    app.on_partitions_assigned.connect(watch_recoveries)  # type: ignore[arg-type]  # as on_revoked

    async def stop_watch_and_end_offsets(sender: Any, **kwargs: Any) -> None:
        for task in watching:
            task.cancel()
        await stream.end_offsets.close()

    app.on_before_shutdown.connect(stop_watch_and_end_offsets)  # type: ignore[arg-type]  # as on_revoked

    metrics.watch(
        Gauges(
            open_tickets=stream.states.open_totals,
            pending_deadlines=stream.deadlines.pending,
            consumer_lag=lambda: _lag(app),
            held_partitions=lambda: len(stream.deadlines.held()),
            oldest_hold=lambda: stream.deadlines.oldest_hold(time.monotonic()),
            kafka_connection_errors=lambda: OUTAGES.errors,
            kafka_unreachable=OUTAGES.unreachable_seconds,
        )
    )

    async def outage_ended() -> None:
        OUTAGES.check()

    app.timer(2.0)(outage_ended)

    started = time.monotonic()

    def facts() -> Facts:
        return Facts(
            now=time.monotonic(),
            loop_beat=stream.deadlines.beat,
            started=started,
            last_record=stream.last_record,
            records_in_hand=stream.positions.waiting(),
            joined=bool(joined),
            rebalancing=bool(app.rebalancing),
            recovering=bool(app.in_recovery),
            broker_unreachable=OUTAGES.unreachable_seconds() > 0,
            owned=frozenset(owned()),
            indexed=frozenset(stream.deadlines.partitions),
            held_partitions=len(stream.deadlines.held()),
            oldest_hold_seconds=stream.deadlines.oldest_hold(time.monotonic()),
        )

    web.install(topology, book, metrics.registry, clock, facts)
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


def check_environment(settings: Settings) -> None:
    """What the settings name must be usable: the data directory writable, the web port free.
    ConfigError naming the variable otherwise (Faust would fail later, with a traceback)."""
    try:
        # Faust creates only the last level of its data directory (the default is var/...).
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.data_dir):
            pass
    except OSError as exc:
        raise ConfigError(f"SLA_DATA_DIR {settings.data_dir} is not a writable directory: "
                          f"{exc.strerror or exc}") from None  # fmt: skip
    try:
        addresses = socket.getaddrinfo(
            settings.web_host, settings.web_port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise ConfigError(f"SLA_WEB_HOST {settings.web_host!r} does not resolve: {exc}") from None
    family, kind, proto, _, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"SLA_WEB_PORT {settings.web_port} on {settings.web_host}: {exc.strerror or exc}"
            ) from None


def run(settings: Settings) -> int:
    """Run a worker until it stops; the exit code."""
    policies = load_policies(settings.policy_file)
    check_environment(settings)
    logging.config.dictConfig(logging_config(settings.log_level))
    try:
        # Before Faust declares a topic: started once with a wrong count, it would create the
        # missing internal topics with it.
        asyncio.run(check_partitions(settings))
    except PartitionMismatch as exc:
        log.critical("partition counts differ: not starting", extra={"error": str(exc)})
        return PartitionMismatch.EXIT_CODE
    topology, _ = assemble(settings, policies)
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
        if isinstance(topology.app.crash_reason, PartitionMismatch):
            raise SystemExit(PartitionMismatch.EXIT_CODE) from None
        # Only a clean at-least-once stop leaves local tables that Kafka backs (local_state).
        if exc.code in (0, None):
            mark_clean_stop(settings)
        raise
    return 0
