"""Broker outages in the log: one line when the broker becomes unreachable, one a minute while it
stays so, one when it is back. The Kafka client's own connection errors (about 60 a second while
a broker is down: every fetch, heartbeat and metadata refresh retries) are counted, not logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

log = logging.getLogger(__name__)

# What aiokafka says, at WARNING or above, when it cannot reach a broker. Not "Marking the
# coordinator dead" alone: a fresh broker's group coordinator is not ready for a moment, and a
# coordinator moves; its heartbeat errors name NodeNotReadyError when the broker is gone.
MARKERS: Final = (
    "Unable connect to",
    "Connect call failed",
    "Unable to update metadata",
    "Unable to request metadata",
    "NodeNotReadyError",
    "KafkaConnectionError",
)
QUIET_SECONDS: Final = 10.0  # no connection error for this long: the broker is reachable again
REPEAT_SECONDS: Final = 60.0  # while it is not, one line this often


def is_connection_error(record: logging.LogRecord) -> bool:
    if record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
        return False
    message = record.getMessage()
    return any(marker in message for marker in MARKERS)


class Outages(logging.Filter):
    """A handler filter: turns the first connection error of an outage into "broker unreachable",
    one a minute into "broker still unreachable", drops the others; `check` logs the end."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.errors = 0  # connection errors seen, logged or not
        self._since: float | None = None  # the outage's start (clock), None: reachable
        self._since_wall = ""
        self._last = 0.0
        self._reported = 0.0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_connection_error(record):
            return True
        now = self.clock()
        self.errors += 1
        self._last = now
        if self._since is None:
            self._since, self._reported, self._dropped = now, now, 0
            self._since_wall = datetime.fromtimestamp(record.created, UTC).isoformat()
            _become(record, "broker unreachable", since=self._since_wall, error=record.getMessage())
            return True
        if now - self._reported >= REPEAT_SECONDS:
            self._reported = now
            _become(record, "broker still unreachable", since=self._since_wall,
                    seconds=round(now - self._since), errors_not_logged=self._dropped,
                    error=record.getMessage())  # fmt: skip
            self._dropped = 0
            return True
        self._dropped += 1
        return False

    def check(self) -> None:
        """Log the end of an outage once no connection error came for QUIET_SECONDS."""
        if self._since is not None and self.clock() - self._last >= QUIET_SECONDS:
            log.info(
                "broker reachable again",
                extra={"since": self._since_wall, "seconds": round(self._last - self._since),
                       "errors_not_logged": self._dropped},
            )  # fmt: skip
            self._since = None

    def unreachable_seconds(self) -> float:
        """How long the current outage has lasted; 0 when the broker is reachable."""
        return 0.0 if self._since is None else self.clock() - self._since


def _become(record: logging.LogRecord, message: str, **fields: object) -> None:
    """Rewrite the client's record in place (no second record through the handlers)."""
    record.name = __name__
    record.msg, record.args = message, ()
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    record.__dict__.update(fields)


# One per process: the logging configuration installs it, the worker's metrics read it.
OUTAGES: Final = Outages()


def installed() -> Outages:
    """The factory `logging_config` names."""
    return OUTAGES
