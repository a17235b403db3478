"""Small arithmetic of the report: ISO weeks, nearest-rank percentiles and histogram buckets."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

_MINUTE: Final = timedelta(minutes=1)
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)


def iso_week(moment: datetime) -> str:
    """`2026-W09`: the ISO 8601 week (Monday to Sunday, UTC) of an instant."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def percentile(ordered: Sequence[timedelta], percent: int) -> timedelta | None:
    """Nearest rank: the smallest value with at least `percent`% of the values at or below it."""
    if not ordered:
        return None
    rank = -(-percent * len(ordered) // 100)  # ceil without floats
    return ordered[max(rank, 1) - 1]


def attainment_percent(met: int, breached: int) -> float | None:
    """Met as a share of the decided (met or breached); None while nothing is decided."""
    decided = met + breached
    return round(100.0 * met / decided, 2) if decided else None


@dataclass(frozen=True, slots=True)
class Buckets:
    """Histogram buckets between `edges`; `upper_inclusive`: a value on an edge falls below it."""

    edges: tuple[timedelta, ...]
    labels: tuple[str, ...]
    upper_inclusive: bool

    def index(self, value: timedelta) -> int:
        find = bisect_left if self.upper_inclusive else bisect_right
        return find(self.edges, value)

    def counts(self, values: Sequence[timedelta]) -> tuple[int, ...]:
        counts = [0] * len(self.labels)
        for value in values:
            counts[self.index(value)] += 1
        return tuple(counts)


# Time to first response: a value on an edge is within it, as a response on its target is met.
FIRST_RESPONSE: Final = Buckets(
    edges=(15 * _MINUTE, 30 * _MINUTE, _HOUR, 2 * _HOUR, 4 * _HOUR, 8 * _HOUR, _DAY, 2 * _DAY),
    labels=("0-15m", "15-30m", "30m-1h", "1-2h", "2-4h", "4-8h", "8h-1d", "1-2d", ">2d"),
    upper_inclusive=True,
)

# Maintenance notice lead times: a lead on an edge belongs above it, as a notice of exactly the
# minimum (five days by default) is not short.
LEAD_TIME: Final = Buckets(
    edges=(_DAY, 2 * _DAY, 3 * _DAY, 4 * _DAY, 5 * _DAY, 7 * _DAY, 14 * _DAY),
    labels=("<1d", "1-2d", "2-3d", "3-4d", "4-5d", "5-7d", "7-14d", ">=14d"),
    upper_inclusive=False,
)
