"""Liveness and readiness rules, on facts (processor/health.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from processor.health import (
    LOOP_STALL_SECONDS,
    STREAM_STALL_SECONDS,
    Facts,
    body,
    liveness,
    readiness,
)

NOW = 10_000.0
HEALTHY = Facts(
    now=NOW, loop_beat=NOW - 0.5, started=NOW - 600, last_record=NOW - 1.0,
    records_in_hand=False, joined=True, rebalancing=False, recovering=False,
    broker_unreachable=False,
    owned=frozenset({0, 1}), indexed=frozenset({0, 1}), held_partitions=1,
    oldest_hold_seconds=2.5,
)  # fmt: skip


def test_a_working_worker_is_live_and_ready() -> None:
    assert liveness(HEALTHY)[0]
    ok, checks = readiness(HEALTHY)
    assert ok
    assert (checks["held_partitions"], checks["oldest_hold_seconds"]) == (1, 2.5)
    assert body(ok, checks) == (200, {"status": "ok", "checks": checks})


@pytest.mark.parametrize(
    ("changes", "live"),
    [
        ({"loop_beat": NOW - LOOP_STALL_SECONDS - 1}, False),
        ({"loop_beat": NOW - LOOP_STALL_SECONDS}, True),
        ({"loop_beat": None, "started": NOW - LOOP_STALL_SECONDS - 1}, False),
        ({"loop_beat": None, "started": NOW - 1}, True),
        # records wait and none was done for two minutes: stuck
        ({"records_in_hand": True, "last_record": NOW - STREAM_STALL_SECONDS - 1}, False),
        ({"records_in_hand": True, "last_record": None, "started": NOW - 900}, False),
        # ... unless a rebalance or a recovery holds the stream
        ({"records_in_hand": True, "last_record": NOW - 900, "recovering": True}, True),
        ({"records_in_hand": True, "last_record": NOW - 900, "rebalancing": True}, True),
        ({"records_in_hand": True, "last_record": NOW - 900, "broker_unreachable": True}, True),
        # nothing waits: idle, not stuck
        ({"records_in_hand": False, "last_record": NOW - 900}, True),
        ({"records_in_hand": True, "last_record": NOW - 60}, True),
    ],
)
def test_liveness(changes: dict[str, object], live: bool) -> None:
    ok, checks = liveness(replace(HEALTHY, **changes))  # type: ignore[arg-type]
    assert ok is live
    assert (checks["deadline_loop"]["ok"] and checks["stream"]["ok"]) is live
    assert body(ok, checks)[0] == (200 if live else 503)


@pytest.mark.parametrize(
    ("changes", "ready"),
    [
        ({"joined": False}, False),
        ({"rebalancing": True}, False),
        ({"recovering": True}, False),
        ({"indexed": frozenset({0})}, False),
        ({"owned": frozenset(), "indexed": frozenset()}, True),  # more workers than partitions
        ({"held_partitions": 2, "oldest_hold_seconds": 300.0}, True),  # a lag, not unreadiness
    ],
)
def test_readiness(changes: dict[str, object], ready: bool) -> None:
    ok, checks = readiness(replace(HEALTHY, **changes))  # type: ignore[arg-type]
    assert ok is ready
    if "indexed" in changes and not ready:
        assert checks["partitions_not_indexed"] == [1]
