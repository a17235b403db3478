"""`SlaStream.handle_batch` with bad records among good ones, on a real table store.

A batch is up to 200 records applied in turn. A malformed record goes to the dead-letter topic;
a record whose handling raises is logged by its ids. Either way the records around it are
applied, their states reach the table's store and, at the batch's end, its changelog, and the
batch counts as done up to its last record, so held ticks are not stalled behind it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from processor import topology, writes
from processor.codec import decode_stored
from processor.metrics import Metrics
from processor.settings import Settings
from processor.sla import engine
from processor.sla.ticket import Ticket
from processor.stream import SlaStream
from tests.shell.test_stream_ticks import POLICY, _Event, _Message
from tests.shell.test_stream_ticks import _Producer as _Outputs
from tests.shell.test_writes import _Producer as _BatchProducer

OPENED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def opened(subject: str) -> bytes:
    return orjson.dumps({
        "specversion": "1.0", "id": f"{subject}-1", "source": "t", "type": "ticket.opened",
        "time": OPENED.isoformat(), "subject": subject,
        "data": {"customer_id": "c", "support_tier": "premium", "severity": "high"},
    })  # fmt: skip


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_bad_records_in_a_batch_leave_the_others_applied_and_their_writes_flushed(
    tmp_path: Path,
    store: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(store=store, data_dir=tmp_path, topic_partitions=1)
    built = topology.build(settings)
    changelog = _BatchProducer()
    monkeypatch.setattr(writes, "kafka_producer", lambda app, tid: changelog)
    sla = SlaStream(built, POLICY, Metrics(CollectorRegistry()), lambda: OPENED)
    outputs = _Outputs()
    monkeypatch.setattr(sla.sender, "_producer", lambda: outputs)
    sla.rebuild({0})

    decide = engine.decide

    def failing(before: Any, event: Any, policies: Any) -> Any:
        if event.subject == "T-BOOM":
            raise RuntimeError("a bug in the engine")
        return decide(before, event, policies)

    monkeypatch.setattr(engine, "decide", failing)
    topic = settings.topic_tickets
    values = [opened("T-1"), b"\xff not json", opened("T-BOOM"), b'{"specversion": 1}',
              opened("T-2")]  # fmt: skip
    batch = [_Event(_Message(topic, 0, 10 + i, key=None), v) for i, v in enumerate(values)]
    caplog.set_level(logging.WARNING)

    await sla.handle_batch(batch)

    # The good records are applied: their states are in the table's store ...
    for subject in ("T-1", "T-2"):
        raw = sla.writes.get(built.tickets, 0, subject.encode())
        assert raw is not None, subject
        state, _ = decode_stored(raw)
        assert isinstance(state, Ticket)
        assert state.opened_at == OPENED
    assert sla.writes.get(built.tickets, 0, b"T-BOOM") is None
    # ... and in one changelog batch, sent at the batch's end.
    name = built.tickets.changelog_topic.get_topic_name()
    assert [(t, p, [k for k, _ in records]) for t, p, records in changelog.sent] == [
        (name, 0, [b"T-1", b"T-2"])
    ]
    assert sla.writes.staged == {}
    # The two malformed records went to the dead-letter topic, untouched.
    dlq = built.dead_letters[topic].get_topic_name()
    assert [v for t, v in outputs.sent if t == dlq] == [values[1], values[3]]
    # The failing one is logged by its ids.
    failed = [r for r in caplog.records if r.getMessage() == "record failed"]
    assert [(r.topic, r.partition, r.offset) for r in failed] == [(topic, 0, 12)]  # type: ignore[attr-defined]
    # The batch counts as done up to its last record: nothing waits behind the failed one.
    assert sla.positions.applied[(topic, 0)] == 15
    # The good tickets' deadlines are armed.
    index = sla.deadlines.partitions[0].index
    assert index.due_of("t:T-1") is not None
    assert index.due_of("t:T-2") is not None
    assert index.due_of("t:T-BOOM") is None
