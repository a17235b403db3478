"""What every timer benchmark run shares: the broker, the work directory, the policy, and where
to place T0 so that an event load is over before the deadlines it set fall due."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.broker import Broker
from bench.machine import LoadLog
from processor.sla.policy import Policy
from processor.sla.vocabulary import Severity, Tier


@dataclass
class Ctx:
    broker: Broker
    work: Path  # var/bench/timers-<stamp>: logs and data dirs
    policy: Policy
    store: str
    load: LoadLog = field(default_factory=LoadLog)
    load_rate: float = 1_500.0  # events/s assumed when placing T0 after an event load
    notes: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def plan_t0(self, events: int, margin: float) -> float:
        """A whole second after an event load of `events` at the assumed rate, plus `margin`."""
        return float(math.ceil(now_s() + events / self.load_rate + margin))

    def learn_rate(self, loaded: dict[str, Any]) -> None:
        """Place the next T0 with 80 % of the rate just observed (never above 1.5x the last
        guess)."""
        if loaded.get("tickets", 0) >= 5_000:
            self.load_rate = max(300.0, min(loaded["events_per_s"] * 0.8, self.load_rate * 1.5))


def now_s() -> float:
    return time.time()


def at_ms(seconds: float) -> datetime:
    """The instant `seconds` (epoch) rounded to a whole millisecond."""
    return datetime.fromtimestamp(round(seconds * 1000) / 1000, UTC)


def low_target(policy: Policy) -> timedelta:
    """The low severity's initial-response target: the one deadline of a low ticket."""
    targets = {policy.response_targets[(Severity.LOW, tier)] for tier in Tier}
    if len(targets) != 1:
        raise RuntimeError(f"the policy's low-severity targets differ by tier: {targets}")
    return targets.pop()


@contextlib.asynccontextmanager
async def recorded(
    out: dict[str, Any], *cleanups: Callable[[], Awaitable[Any]]
) -> AsyncIterator[None]:
    """A run's body: an exception is recorded in `out["error"]` (the benchmark goes on with its
    next run), and `cleanups` run in order whatever happens."""
    try:
        yield
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[-2000:]
    finally:
        for cleanup in cleanups:
            await cleanup()
