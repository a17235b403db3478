"""Each fetch is reported from the Kafka client's thread (`faust_fixes.fetch_report`)."""

from __future__ import annotations

import types
from typing import Any

import faust.transport.drivers.aiokafka as drivers

from processor.faust_fixes.fetch_report import report_fetches


async def test_each_fetch_is_reported_from_the_client_thread() -> None:
    reported: list[tuple[Any, Any, Any]] = []

    class Thread:
        consumer = types.SimpleNamespace(
            app=types.SimpleNamespace(sla_on_fetched=lambda *a: reported.append(a))
        )

        async def _fetch_records(self, consumer: Any, active: Any, timeout: Any = None,
                                 max_records: Any = None) -> Any:  # fmt: skip
            return {"tp": ["record"]}

    report_fetches(Thread)
    report_fetches(Thread)  # idempotent
    assert await Thread()._fetch_records("aiokafka", {"tp"}, timeout=1.0) == {"tp": ["record"]}
    assert reported == [("aiokafka", {"tp"}, {"tp": ["record"]})]
    assert "_fetch_records" in vars(drivers.AIOKafkaConsumerThread)  # still the hand-over point
