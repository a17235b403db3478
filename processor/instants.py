"""The shell's time: every conversion between the core's instants and what the shell keeps.

The core speaks `datetime` (UTC). The shell keeps instants as float epoch seconds (the deadline
indexes, the tick loop); the wire formats write integer microseconds since the epoch (stored
states, tick records, an earlier release's watermarks). Nothing else converts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def epoch(moment: datetime) -> float:
    """Seconds since the epoch."""
    return moment.timestamp()


def instant(seconds: float) -> datetime:
    """The UTC instant `seconds` after the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def micros(moment: datetime) -> int:
    """Whole microseconds since the epoch (exact)."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    """The UTC instant `value` microseconds after the epoch (exact)."""
    return EPOCH + value * MICROSECOND


def micros_to_epoch(value: int) -> float:
    """Microseconds since the epoch as epoch seconds, as `epoch(from_micros(value))` gives them."""
    return value / 1e6
