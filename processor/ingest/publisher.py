"""The ingest's producer: records sent and acknowledged, or Unavailable (answered 503)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from processor.settings import Settings
from processor.topology import client_options
from schemas.cloudevents import STRUCTURED

log = logging.getLogger(__name__)

HEADERS: Final = [("content-type", STRUCTURED.encode())]


class Unavailable(Exception):
    """Kafka did not acknowledge in time, or cannot be reached."""


class Publisher:
    """An idempotent producer, started on first use and again after a fatal error."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.ingest_send_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._producer is not None

    async def connect(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                timeout_ms = int(self._timeout * 1000)
                producer = AIOKafkaProducer(
                    **client_options(self._settings),
                    client_id=f"{self._settings.app_id}-ingest",
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=max(timeout_ms, 1000),
                    max_request_size=2 * self._settings.ingest_max_request_bytes,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise Unavailable(f"Kafka cannot be reached: {type(exc).__name__}") from None
                self._producer = producer
                log.info("connected to Kafka", extra={"event": "kafka_connected"})
            return self._producer

    async def publish(self, records: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Send every (topic, key, value) and wait until each is acknowledged, or Unavailable."""
        producer = await self.connect()
        try:
            async with asyncio.timeout(self._timeout):
                sent = [await producer.send(topic, value, key=key, headers=HEADERS)
                        for topic, key, value in records]  # fmt: skip
                for delivery in sent:
                    # Shielded: at the timeout the records stay queued (a later delivery is a
                    # harmless repeat of the sender's retry), and the producer's futures intact.
                    await asyncio.shield(delivery)
        except TimeoutError:
            raise Unavailable("Kafka did not acknowledge in time") from None
        except KafkaError as exc:
            await self._reset(exc)
            raise Unavailable(f"Kafka refused: {type(exc).__name__}") from None

    async def _reset(self, exc: BaseException) -> None:
        """A producer whose error is not retriable is replaced (a fresh producer id)."""
        if getattr(exc, "retriable", True):
            return
        async with self._lock:
            producer, self._producer = self._producer, None
        log.warning("producer restarted", extra={"event": "producer_restarted",
                                                 "error": type(exc).__name__})  # fmt: skip
        if producer is not None:
            await producer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # sends what is queued first
