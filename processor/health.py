"""Liveness and readiness, decided from facts the worker gathers (`Facts`): pure, so every rule
is tested without a worker.

- **Live** (`/healthz`): the event loop answers (the request itself), the deadline loop went round
  within `LOOP_STALL_SECONDS`, and the stream is not stuck: records the Kafka client handed over
  wait while none was done for `STREAM_STALL_SECONDS`, outside a rebalance, a recovery or a broker
  outage (`processor.outages`: the sends of a record wait for the broker). A failed
  liveness means a restart helps.
- **Ready** (`/readyz`): the worker joined its group, is neither rebalancing nor recovering, and
  every partition it owns has its deadline index rebuilt. Deadlines held behind a backlog are
  reported, and do not make it unready: a lag is what `sla_deadline_hold_seconds` alerts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

LOOP_STALL_SECONDS: Final = 30.0  # the deadline loop goes round at least once a second
STREAM_STALL_SECONDS: Final = 120.0


@dataclass(frozen=True, slots=True)
class Facts:
    now: float  # monotonic seconds
    loop_beat: float | None  # the deadline loop's last round (None: not started)
    started: float  # when the worker started
    last_record: float | None  # when the stream last finished a record
    records_in_hand: bool  # handed over by the client, not yet done with
    joined: bool  # an assignment was received (possibly of no partition)
    rebalancing: bool
    recovering: bool
    broker_unreachable: bool  # a restart would not help: nothing can be sent meanwhile
    owned: frozenset[int]  # partitions assigned
    indexed: frozenset[int]  # partitions whose deadline index is rebuilt
    held_partitions: int
    oldest_hold_seconds: float


def liveness(facts: Facts) -> tuple[bool, dict[str, Any]]:
    beat_age = facts.now - (facts.loop_beat if facts.loop_beat is not None else facts.started)
    loop_ok = beat_age <= LOOP_STALL_SECONDS
    idle = facts.now - (facts.last_record if facts.last_record is not None else facts.started)
    paused = facts.rebalancing or facts.recovering or facts.broker_unreachable
    stream_ok = paused or not facts.records_in_hand or idle <= STREAM_STALL_SECONDS
    checks = {
        "deadline_loop": {"ok": loop_ok, "seconds_since_round": round(beat_age, 3)},
        "stream": {
            "ok": stream_ok,
            "records_in_hand": facts.records_in_hand,
            "seconds_since_record": round(idle, 3),
            "paused": paused,
        },
    }
    return loop_ok and stream_ok, checks


def readiness(facts: Facts) -> tuple[bool, dict[str, Any]]:
    missing = sorted(facts.owned - facts.indexed)
    checks = {
        "joined": facts.joined,
        "rebalancing": facts.rebalancing,
        "recovering": facts.recovering,
        "partitions": sorted(facts.owned),
        "partitions_not_indexed": missing,
        "held_partitions": facts.held_partitions,
        "oldest_hold_seconds": round(facts.oldest_hold_seconds, 3),
    }
    ready = facts.joined and not facts.rebalancing and not facts.recovering and not missing
    return ready, checks


def body(ok: bool, checks: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body): 200 and "ok", or 503 and "fail"."""
    return (200 if ok else 503), {"status": "ok" if ok else "fail", "checks": checks}
