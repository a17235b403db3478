"""The ingest's producer: records sent and acknowledged, or Unavailable (answered 503)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerClosed

from processor.ingest.binding import HEADERS
from processor.settings import Settings
from processor.topology import client_options

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Kafka did not acknowledge in time, or cannot be reached."""


class Publisher:
    """An idempotent producer, started on first use and again after a fatal error.

    `ready` is false while no producer is connected, and after a request timed out until a
    metadata round trip (`check`, the readiness probe) or a publish succeeds again.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.ingest_send_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Future[AIOKafkaProducer] | None = None
        self._failing = False

    @property
    def ready(self) -> bool:
        return self._producer is not None and not self._failing

    async def connect(self) -> AIOKafkaProducer:
        """The producer, started if need be. Requests that come while it is being started wait
        for that one start (a failed start answers them all at once, not one after another)."""
        if self._producer is not None:
            return self._producer
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
            self._starting.add_done_callback(self._started)
        return await asyncio.shield(self._starting)

    def _started(self, attempt: asyncio.Future[AIOKafkaProducer]) -> None:
        self._starting = None  # the next request tries again
        if not attempt.cancelled():
            attempt.exception()  # retrieved: each waiter has it already

    async def _start(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **client_options(self._settings),
            client_id=f"{self._settings.app_id}-ingest",
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=max(int(self._timeout * 1000), 1000),
            max_request_size=2 * self._settings.ingest_max_request_bytes,
        )
        try:
            await asyncio.wait_for(producer.start(), self._timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._stop(producer)
            raise Unavailable(f"Kafka cannot be reached: {type(exc).__name__}") from None
        self._producer, self._failing = producer, False
        log.info("connected to Kafka", extra={"event": "kafka_connected"})
        return producer

    async def publish(self, records: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Send every (topic, key, value) and wait until each is acknowledged, or Unavailable."""
        producer = await self.connect()
        try:
            async with asyncio.timeout(self._timeout):
                sent = [await producer.send(topic, value, key=key, headers=list(HEADERS))
                        for topic, key, value in records]  # fmt: skip
                for delivery in sent:
                    # Shielded: at the timeout the records stay queued (a later delivery is a
                    # harmless repeat of the sender's retry), and the producer's futures intact.
                    await asyncio.shield(delivery)
        except TimeoutError:
            self._failing = True
            raise Unavailable("Kafka did not acknowledge in time") from None
        except KafkaError as exc:
            self._failing = True
            await self._reset(producer, exc)
            raise Unavailable(f"Kafka refused: {type(exc).__name__}") from None
        self._failing = False

    async def check(self) -> bool:
        """Whether Kafka answers: connected, and after a failure a metadata round trip."""
        try:
            producer = await self.connect()
        except Unavailable:
            return False
        if self._failing:
            try:
                await asyncio.wait_for(producer.client.fetch_all_metadata(), self._timeout)
            except (KafkaError, OSError, TimeoutError):
                return False
            self._failing = False
        return True

    async def _reset(self, producer: AIOKafkaProducer, exc: BaseException) -> None:
        """A producer whose error is not retriable is replaced (a fresh producer id); only the
        one that failed, never a newer one another request started meanwhile."""
        if getattr(exc, "retriable", True) or isinstance(exc, ProducerClosed):
            return
        if self._producer is not producer:
            return
        self._producer = None
        log.warning("producer restarted", extra={"event": "producer_restarted",
                                                 "error": type(exc).__name__})  # fmt: skip
        await self._stop(producer)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        """Stopped, waiting for its queued records at most the send timeout."""
        try:
            await asyncio.wait_for(producer.stop(), self._timeout)
        except (KafkaError, OSError, TimeoutError):
            log.warning("producer stopped with records unsent", extra={"event": "stop_timeout"})

    async def close(self) -> None:
        if self._producer is not None:
            await self._stop(self._producer)  # sends what is queued first
