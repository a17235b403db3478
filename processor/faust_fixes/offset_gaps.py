"""Offsets Faust counts as processed without a record are logged (not a defect: an alarm)."""

from __future__ import annotations

import logging
from typing import Any

import faust.transport.consumer as faust_consumer
from faust.types import TP

log = logging.getLogger(__name__)


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
