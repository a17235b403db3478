"""A broker outage logs one line when it starts, one a minute while it lasts, one when it ends;
the client's own connection errors are counted, not logged."""

from __future__ import annotations

import io
import logging
import logging.config

import orjson
import pytest

from processor.logs import logging_config
from processor.outages import OUTAGES, Outages

REFUSED = "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(message: str, name: str = "aiokafka", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, (), None)


def test_an_outage_is_one_line_then_one_a_minute_then_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outages = Outages(clock)
    passed = []
    for _ in range(150):  # 2.5 minutes at one error a second
        r = record(REFUSED)
        if outages.filter(r):
            passed.append((clock.now, r.name, r.getMessage(), r.levelname))
        clock.now += 1.0
    assert [(t, m) for t, _, m, _ in passed] == [
        (1000.0, "broker unreachable"),
        (1060.0, "broker still unreachable"),
        (1120.0, "broker still unreachable"),
    ]
    assert {(n, lvl) for _, n, _, lvl in passed} == {("processor.outages", "WARNING")}
    assert outages.errors == 150
    assert outages.unreachable_seconds() == 150.0
    clock.now += 5.0
    outages.check()
    assert outages.unreachable_seconds() == 155.0  # not quiet for 10 s yet
    clock.now += 6.0
    with caplog.at_level(logging.INFO, logger="processor.outages"):
        outages.check()
        outages.check()
    assert [r.getMessage() for r in caplog.records] == ["broker reachable again"]
    assert caplog.records[0].__dict__["seconds"] == 149
    assert outages.unreachable_seconds() == 0.0
    fresh = record(REFUSED)
    assert outages.filter(fresh)  # a new outage starts with its own line
    assert fresh.getMessage() == "broker unreachable"


@pytest.mark.parametrize(
    "r",
    [
        record("Unable connect to node 1", name="faust.transport"),  # not the client's
        record("Unable connect to node 1", level=logging.INFO),
        record("Heartbeat failed for group g because it is rebalancing"),
        record("Commit failed: UnknownMemberIdError"),
        record("Marking the coordinator dead (node 1)for group g.", level=logging.WARNING),
    ],
    ids=["another-logger", "info", "rebalancing", "other-error", "coordinator-not-ready"],
)
def test_other_records_pass_untouched(r: logging.LogRecord) -> None:
    outages = Outages(Clock())
    message = r.getMessage()
    assert outages.filter(r)
    assert (r.getMessage(), outages.errors) == (message, 0)


def test_the_logging_configuration_installs_the_filter() -> None:
    stream = io.StringIO()
    config = logging_config("INFO")
    config["handlers"]["stderr"]["stream"] = stream
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("aiokafka").disabled)
    logging.config.dictConfig(config)
    try:
        [handler] = logging.getLogger().handlers
        assert handler.filters == [OUTAGES]
        before = OUTAGES.errors
        for _ in range(50):
            logging.getLogger("aiokafka").error(REFUSED)
        lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
        assert OUTAGES.errors == before + 50
        # One line, or none if an earlier test left the process's outage open.
        assert len(lines) <= 1
        for line in lines:
            assert (line["msg"], line["logger"], line["error"]) == (
                "broker unreachable", "processor.outages", REFUSED,
            )  # fmt: skip
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
        logging.getLogger("aiokafka").disabled = saved[2]
