"""What each fetch handed over, reported from the Kafka client's thread (not a defect: a hook)."""

from __future__ import annotations

import logging
from typing import Any

import faust.transport.drivers.aiokafka as faust_aiokafka

log = logging.getLogger(__name__)


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
