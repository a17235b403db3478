"""The settings reach the Faust app they configure."""

from __future__ import annotations

from processor.settings import Settings
from processor.topology import build


def test_timeouts_and_batching_come_from_the_settings() -> None:
    settings = Settings(
        store="memory://",
        session_timeout_seconds=30,
        producer_linger_seconds=0.02,
        commit_interval_seconds=1.5,
    )
    conf = build(settings).app.conf
    assert conf.broker_session_timeout == 30
    assert conf.broker_heartbeat_interval == 1.0
    assert conf.producer_linger == 0.02
    assert conf.broker_commit_interval == 1.5


def test_defaults_favour_latency() -> None:
    conf = build(Settings(store="memory://")).app.conf
    assert conf.broker_session_timeout == 10
    assert conf.producer_linger == 0
