"""Offsets counted as processed without a record are logged (`faust_fixes.offset_gaps`)."""

from __future__ import annotations

import inspect
from typing import Any

import faust.transport.consumer
import pytest
from faust.types import TP

from processor.faust_fixes.offset_gaps import log_offset_gaps


class _GapConsumer:
    def __init__(self, in_transaction: bool) -> None:
        self.in_transaction = in_transaction
        self.gaps: list[tuple[int, int]] = []

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        self.gaps.append((offset_from, offset_to))


@pytest.mark.parametrize(("in_transaction", "level"), [(False, "WARNING"), (True, "INFO")])
async def test_an_offset_gap_is_recorded_and_logged(
    caplog: pytest.LogCaptureFixture, in_transaction: bool, level: str
) -> None:
    consumer_class = type("Consumer", (_GapConsumer,), {})
    log_offset_gaps(consumer_class)
    log_offset_gaps(consumer_class)  # idempotent: one line per gap, not two
    consumer = consumer_class(in_transaction)
    caplog.set_level("INFO", logger="processor.faust_fixes.offset_gaps")
    await consumer._add_gap(TP("t.tickets", 3), 8, 12)
    assert consumer.gaps == [(8, 12)]  # faust's own bookkeeping still runs
    lines = [r for r in caplog.records if r.name == "processor.faust_fixes.offset_gaps"]
    assert [(r.levelname, r.getMessage(), r.partition, r.to) for r in lines] == [  # type: ignore[attr-defined]
        (level, "offsets counted as processed without a record", 3, 12)
    ]


def test_faust_still_fills_offset_gaps_where_this_logs_them() -> None:
    source = inspect.getsource(faust.transport.consumer.Consumer._drain_messages)
    assert "await self._add_gap(tp, r_offset + 1, offset)" in source
