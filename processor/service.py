"""The worker shell: assemble topology, stream behaviour, timers, metrics and web; run commands."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import faust.tables.recovery as faust_recovery
import faust.transport.consumer as faust_consumer
import faust.transport.drivers.aiokafka as faust_aiokafka
import faust.transport.producer as faust_producer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP, StreamT
from mode.utils.queues import FlowControlEvent
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from processor import web
from processor.metrics import Gauges, Metrics
from processor.settings import ProcessingGuarantee, Settings
from processor.sla.policy import Policy, load_policy
from processor.stream import SlaStream
from processor.timers import tick_loop
from processor.topology import Topology, build, client_options, topic_names

log = logging.getLogger(__name__)

_TOPIC_EXISTS = 36
_METADATA_WAIT_SECONDS = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def keep_queues_on_redundant_resume(flow_control: FlowControlEvent) -> None:
    """Work round a record loss in faust-streaming 0.15 recovery.

    `FlowControlEvent.resume()` always empties every agent's queue. That is right after a
    suspension (a rebalance), but recovery calls it twice: once when it starts reading the
    changelogs, and again in `Recovery.on_recovery_completed` after awaiting
    `consumer.perform_seek()` with the stream partitions already resumed and the fetcher
    running. Records fetched during that seek are then dropped unprocessed; read past, they are
    not fetched again, and the records after them get committed: a backlog after a restart loses
    its first records (seen in both processing guarantees). A resume while flow is already
    active has nothing stale to drop, so it clears nothing here.
    """
    resume = flow_control.resume

    def resume_clearing_only_after_suspend() -> None:
        if flow_control.is_active():
            flow_control._suspend.clear()
            flow_control._resume.set()
            return
        resume()

    flow_control.resume = resume_clearing_only_after_suspend  # type: ignore[method-assign]


def flush_producer_buffer_fully(buffer_class: Any = faust_producer.ProducerBuffer) -> None:
    """Work round a record loss in faust-streaming 0.15: a producer flush that does not flush.

    Table writes reach Kafka through Faust's `ProducerBuffer`: a queue drained by a background
    task. Before committing offsets (at-least-once) or giving up partitions, Faust flushes it,
    but `ProducerBuffer.flush` returns as soon as 0.1 s pass without a message sent, and its
    size leaves out the message the task has taken but not yet handed to the client. A busy
    worker therefore committed offsets whose changelog records were still in the buffer; a
    SIGKILL then lost the state (seen: a restarted worker rejected a ticket's later events as
    `unknown_ticket`, its opening committed but missing from the recovered table). Here the
    flush returns only when the buffer is empty and nothing is in hand, so the client's own
    flush, which follows, covers every table write. A buffer that stopped running with messages
    left still raises, as Faust's does.
    """
    if getattr(buffer_class.flush, "_fully", False):
        return
    send_pending = buffer_class._send_pending
    buffer_class._sla_in_hand = 0  # messages taken from the queue, not yet with the client

    async def send_pending_counted(self: Any, fut: Any) -> None:
        self._sla_in_hand += 1
        try:
            await send_pending(self, fut)
        finally:
            self._sla_in_hand -= 1

    async def flush_fully(self: Any) -> None:
        while self.size or self._sla_in_hand:
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            await asyncio.sleep(BUFFER_FLUSH_POLL_SECONDS)

    flush_fully._fully = True  # type: ignore[attr-defined]
    buffer_class._send_pending = send_pending_counted
    buffer_class.flush = flush_fully


BUFFER_FLUSH_POLL_SECONDS = 0.001


def seek_with_flow_stopped(consumer_class: Any = faust_consumer.Consumer) -> None:
    """Work round a record loss in faust-streaming 0.15: deliveries racing the seek to commits.

    `Recovery.on_recovery_completed` resumes the stream partitions first and only then awaits
    `Consumer.perform_seek()`, with the flow active. The fetcher goes on delivering the batch
    it fetched from the old position while the seek resets Faust's read offsets to the
    committed ones; the next record of that batch then lies past the reset offset, and Faust
    records the offsets in between as a *gap*, which it counts as acknowledged although their
    records may still wait, unprocessed, in the agent's queue. A commit in that moment and a
    crash before they are processed loses them. (Seen in the rebalance test's logs: records
    handled before the seek completed, the offsets before them never delivered again, a gap
    logged by `log_offset_gaps` in 2 of 3 runs.) With the flow stopped for the seek, a fetch
    that returns meanwhile is dropped and sought back to the committed offsets (Faust's own
    path for a stopped flow), so nothing is delivered until the seek is done. Every caller resumes the flow after the seek;
    if the seek fails, the flow is put back as it was.
    """
    if getattr(consumer_class.perform_seek, "_flow_stopped", False):
        return
    perform_seek = consumer_class.perform_seek

    async def perform_seek_with_flow_stopped(self: Any) -> None:
        flowing = self.flow_active
        self.stop_flow()
        try:
            await perform_seek(self)
        except BaseException:
            if flowing:
                self.resume_flow()
            raise

    perform_seek_with_flow_stopped._flow_stopped = True  # type: ignore[attr-defined]
    consumer_class.perform_seek = perform_seek_with_flow_stopped


def seek_uncommitted_to_beginning(
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread,
) -> None:
    """Work round a record loss in faust-streaming 0.15: records drawn, dropped, never read again.

    Faust's `Consumer.getmany` drops the rest of a batch the Kafka client already handed over
    when the flow stops or the group's generation changes in the middle of it (a rebalance,
    `seek_with_flow_stopped`), trusting the seek to committed offsets that follows to fetch them
    again. aiokafka's `seek_to_committed` seeks only partitions whose committed offset is above
    0: a partition never committed keeps the client's position past the dropped records, which
    are then never delivered (seen: a worker restarted after a SIGKILL before its first commit
    read none of a topic's records, and its deadlines fired on state without them). Here the
    source partitions (`app.sla_source_topics`) left unsought are reset to their beginning, as
    the `earliest` reset policy would place them, and the stream is told which partitions were
    sought (`app.sla_on_seek`), so that positions reported before the seek count for nothing.
    """
    if getattr(thread_class.seek_to_committed, "_or_beginning", False):
        return
    seek_to_committed = thread_class.seek_to_committed

    async def seek_to_committed_or_beginning(self: Any) -> Any:
        committed = await seek_to_committed(self)
        app = self.consumer.app
        sources = getattr(app, "sla_source_topics", ())
        unsought = [
            tp for tp, offset in committed.items() if tp.topic in sources and not (offset or 0) > 0
        ]
        if unsought:
            await self.seek_to_beginning(*unsought)
        on_seek = getattr(app, "sla_on_seek", None)
        if on_seek is not None:
            on_seek(list(committed))
        return committed

    seek_to_committed_or_beginning._or_beginning = True  # type: ignore[attr-defined]
    thread_class.seek_to_committed = seek_to_committed_or_beginning


def log_offset_gaps(consumer_class: Any = faust_consumer.Consumer) -> None:
    """Log each offset range Faust counts as processed although no record of it was handled.

    Faust fills a jump in a partition's offsets (a transaction marker, compaction) into the
    offsets it commits. In exactly-once mode the re-key topic's markers make such gaps normal;
    on a topic written without transactions a gap means records skipped unprocessed, so it is
    logged as a warning there: the sign of a loss like the one `seek_with_flow_stopped` closes.
    """
    if getattr(consumer_class._add_gap, "_logged", False):
        return
    add_gap = consumer_class._add_gap

    async def add_gap_logged(self: Any, tp: TP, offset_from: int, offset_to: int) -> None:
        await add_gap(self, tp, offset_from, offset_to)
        level = logging.INFO if self.in_transaction else logging.WARNING
        log.log(
            level,
            "offsets counted as processed without a record",
            extra={"topic": tp.topic, "partition": tp.partition, "from": offset_from,
                   "to": offset_to},
        )  # fmt: skip

    add_gap_logged._logged = True  # type: ignore[attr-defined]
    consumer_class._add_gap = add_gap_logged


def commit_between_records(consumer_class: Any = faust_consumer.Consumer) -> None:
    """Work round split units of work in faust-streaming 0.15: commits in the middle of a record.

    Faust commits from its own tasks (a timer, `commit_every`, a rebalance), at any `await` of
    the agent. Under exactly-once a commit in the middle of a record commits part of its outputs
    and table writes with the offsets before it; a crash then repeats them (an id committed
    twice), or, with the rest of the record's effects in the next, aborted, transaction, keeps
    some and loses others. And the transaction commit does not flush Faust's producer buffer:
    table writes still queued there went into the *next* transaction, apart from the outputs
    and the offset they belong with. Here a commit waits for the record in hand (the app's
    `sla_record_lock`, held by the stream per record), and under exactly-once flushes the
    buffer into the transaction first. A record's ack runs before the agent asks for the lock
    again, so the committed offsets include every record whose effects are committed.
    """
    if getattr(consumer_class.force_commit, "_between_records", False):
        return
    force_commit = consumer_class.force_commit

    async def force_commit_between_records(self: Any, *args: Any, **kwargs: Any) -> bool:
        lock = getattr(self.app, "sla_record_lock", None)
        if lock is None:
            return bool(await force_commit(self, *args, **kwargs))
        async with lock:
            if self.in_transaction:
                await self.app.producer.buffer.flush()
            return bool(await force_commit(self, *args, **kwargs))

    force_commit_between_records._between_records = True  # type: ignore[attr-defined]
    consumer_class.force_commit = force_commit_between_records


def report_fetches(thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread) -> None:
    """Tell the stream, from the Kafka client's thread, what each fetch handed over.

    Not a defect: the one place where both the records a fetch hands to Faust and the client's
    position after it (past transaction markers and aborted records) can be read together,
    which is what a tick needs to know that a source partition is read up to an end offset
    (`processor.sla.firing.caught_up`). The app's `sla_on_fetched(consumer, partitions,
    records)` is called after each fetch, on the client's thread.
    """
    if getattr(thread_class._fetch_records, "_reported", False):
        return
    fetch_records = thread_class._fetch_records

    async def fetch_records_reported(self: Any, consumer: Any, *args: Any, **kwargs: Any) -> Any:
        records = await fetch_records(self, consumer, *args, **kwargs)
        report = getattr(self.consumer.app, "sla_on_fetched", None)
        if report is not None:
            active = args[0] if args else kwargs["active_partitions"]
            try:
                report(consumer, active, records)
            except Exception:  # the records must reach Faust whatever the report does
                log.exception("fetch report failed")
        return records

    fetch_records_reported._reported = True  # type: ignore[attr-defined]
    thread_class._fetch_records = fetch_records_reported


# Faust's changelog recovery waits this long for the next record before it looks for the end.
_FAUST_RECOVERY_IDLE_SECONDS = 5.0
RECOVERY_IDLE_SECONDS = 0.5


def shorten_recovery_idle_wait(recovery_module: Any = faust_recovery) -> None:
    """Work round a slow exactly-once restart in faust-streaming 0.15 recovery.

    A transactional changelog ends with a commit marker, an offset no record reaches, so
    `Recovery._slurp_changelogs` only ends after two consecutive idle waits, for the next
    changelog record, of a hard-coded 5 s each: every exactly-once start or rebalance took
    10 s longer than the changelogs needed. The idle waits are safe to shorten: one ends only
    when no record is queued, and the end is then accepted only for partitions whose fetch
    position has passed their high watermark. Only that wait (its literal 5 s) is changed.
    """
    real = recovery_module.asyncio
    if isinstance(real, _ShortIdleAsyncio):
        return

    recovery_module.asyncio = _ShortIdleAsyncio(real)


class _ShortIdleAsyncio:
    """`asyncio` as faust.tables.recovery sees it, with the changelog idle wait shortened."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        if timeout == _FAUST_RECOVERY_IDLE_SECONDS:
            timeout = RECOVERY_IDLE_SECONDS
        return self._real.wait_for(awaitable, timeout=timeout)


def assemble(
    settings: Settings,
    policy: Policy,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[Topology, SlaStream]:
    """Build the Faust app with its agent, hooks, timer task and web views."""
    topology = build(settings)
    app = topology.app
    keep_queues_on_redundant_resume(app.flow_control)
    shorten_recovery_idle_wait()
    seek_with_flow_stopped()
    seek_uncommitted_to_beginning()
    log_offset_gaps()
    flush_producer_buffer_fully()
    commit_between_records()
    report_fetches()
    metrics = Metrics(registry)
    stream = SlaStream(topology, policy, metrics, clock)
    app.sla_record_lock = stream.record_lock  # type: ignore[attr-defined]
    app.sla_on_fetched = stream.on_fetched  # type: ignore[attr-defined]
    app.sla_on_seek = stream.on_seek  # type: ignore[attr-defined]
    app.sla_source_topics = set(topology.source.topics)  # type: ignore[attr-defined]
    ticks_topic = topology.ticks.get_topic_name()

    async def sla(records: StreamT[bytes]) -> None:
        async for event in records.events():
            try:
                await stream.handle(event)
            except Exception:  # one bad record must never stop the agent
                log.exception(
                    "record failed",
                    extra={
                        "topic": event.message.topic,
                        "partition": event.message.partition,
                        "offset": event.message.offset,
                    },
                )

    app.agent(topology.source, name="sla")(sla)

    def owned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == ticks_topic}

    async def on_recover() -> None:
        stream.rebuild(owned())
        stream.warm_end_offsets()

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
            open_tickets=lambda: _open(stream),
            pending_deadlines=stream.deadlines.pending,
            consumer_lag=lambda: _lag(app),
            held_partitions=lambda: len(stream.deadlines.held()),
            oldest_hold=lambda: stream.deadlines.oldest_hold(time.monotonic()),
        )
    )
    web.install(topology, policy, metrics.registry, clock)
    return topology, stream


def _open(stream: SlaStream) -> dict[tuple[str, str], int]:
    total: dict[tuple[str, str], int] = {}
    for counts in list(stream.open_tickets.values()):
        for key, count in counts.items():
            total[key] = total.get(key, 0) + count
    return total


def _lag(app: faust.App) -> dict[tuple[str, int], int]:
    lag: dict[tuple[str, int], int] = {}
    try:
        consumer = app.consumer
        for tp in consumer.assignment():
            # Faust keeps committed offsets privately; a missing attribute only costs the lag metric.
            committed = getattr(consumer, "_committed_offset", {}).get(tp)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag[(tp.topic, tp.partition)] = max(highwater - (committed or 0), 0)
    except Exception:  # the consumer may be rebalancing; a scrape must not fail for it
        log.debug("consumer lag unavailable", exc_info=True)
    return lag


def logging_config(level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "processor.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
    }


async def create_topics(settings: Settings) -> list[str]:
    """Create the processor's topics if missing; existing ones must have the configured partitions."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = topic_names(settings)
        wanted = [
            NewTopic(n, settings.topic_partitions, settings.topic_replication_factor) for n in names
        ]
        response = await admin.create_topics(wanted)
        for name, code, *_ in response.topic_errors:
            if code not in (0, _TOPIC_EXISTS):
                raise RuntimeError(f"cannot create topic {name}: error code {code}")
        for topic in await _described(admin, names):
            found = len(topic["partitions"])
            if found != settings.topic_partitions:
                raise RuntimeError(
                    f"topic {topic['topic']} has {found} partitions, SLA_TOPIC_PARTITIONS is "
                    f"{settings.topic_partitions}: state must be co-partitioned with its inputs"
                )
        return names
    finally:
        await admin.close()


async def _described(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """Topic descriptions, once the broker's metadata shows every topic just created.

    CreateTopics returns before the new topics reach the broker's metadata cache: described at
    once, one may still be unknown, or listed with no partitions.
    """
    deadline = time.monotonic() + _METADATA_WAIT_SECONDS
    while True:
        topics: list[dict[str, Any]] = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] for t in topics):
            return topics
        if time.monotonic() > deadline:
            missing = [t["topic"] for t in topics if t["error_code"] or not t["partitions"]]
            raise RuntimeError(f"topics not visible in the broker's metadata: {missing}")
        await asyncio.sleep(0.1)


# The test suite's own variables share the prefix (docs/kafka.md); they configure no worker.
_NOT_SETTINGS = "SLA_TEST_"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`SLA_*` variables that name no setting: pydantic-settings ignores them, a typo must not."""
    known = {f"SLA_{name.upper()}" for name in Settings.model_fields}
    return sorted(
        name
        for name in environ
        if name.startswith("SLA_") and name not in known and not name.startswith(_NOT_SETTINGS)
    )


def describe(exc: ValidationError) -> str:
    """One line per error, naming the variable; never the input (it may be a password)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = f"SLA_{str(error['loc'][0]).upper()}" if error["loc"] else "settings"
        lines.append(f"  {where}: {error['msg']}\n")
    return "".join(lines)


def run(command: str) -> int:
    unknown = unknown_variables(os.environ)
    if unknown:
        sys.stderr.write(f"sla-processor: unknown configuration variable: {', '.join(unknown)}\n")
        return 2
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"sla-processor: invalid configuration:\n{describe(exc)}")
        return 2
    if command == "create-topics":
        names = asyncio.run(create_topics(settings))
        sys.stdout.write("".join(f"{name}\n" for name in names))
        return 0
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
        # Only a clean at-least-once stop leaves local tables that Kafka backs (below).
        if (
            exc.code in (0, None)
            and settings.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
        ):
            _clean_stop(settings).touch()
        raise
    return 0


def _clean_stop(settings: Settings) -> Path:
    return settings.data_dir / "clean-stop"


def discard_unsafe_local_state(settings: Settings, tables: Path) -> dict[str, str] | None:
    """Delete the local RocksDB tables unless the last run stopped cleanly, at-least-once.

    Faust writes a table's local RocksDB at once, before the changelog record and before the
    outputs of the same record reach Kafka, and never rolls it back. After a crash (or, under
    exactly-once, any stop: uncommitted transactions are aborted, their table writes stay
    local) the local state can hold an event whose outputs were lost: the event, read again,
    is then a repeated id and emits nothing. Restored from the changelogs instead, the state
    holds only what Kafka kept with its outputs. Returns why it discarded, None if it did not.
    """
    marker = _clean_stop(settings)
    clean = marker.exists()
    marker.unlink(missing_ok=True)
    if settings.store != "rocksdb://" or not tables.exists():
        return None
    if clean and settings.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE:
        return None
    why = "exactly_once" if clean else "unclean stop"
    shutil.rmtree(tables)
    return {"reason": why, "path": str(tables)}
