"""Work-rounds of faust-streaming defects, one module each, and the private reads of Faust the
worker needs (`internals`).

Each module's docstring gives the defect, how it was seen and what the fix changes;
`tests/faust_fixes/` pins each fix and checks that the installed Faust still has the defect, so
a release that fixes one fails a test instead of being patched twice. `docs/faust-fixes.md` is
the overview. `apply` installs them all, on a Faust release they were verified against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import faust

from processor.faust_fixes.delivery_tasks import deliver_without_tasks
from processor.faust_fixes.fetch_report import report_fetches
from processor.faust_fixes.flow_control import keep_queues_on_redundant_resume
from processor.faust_fixes.offset_gaps import log_offset_gaps
from processor.faust_fixes.producer_flush import flush_producer_buffer_fully
from processor.faust_fixes.record_commits import commit_between_records
from processor.faust_fixes.recovery_highwaters import ask_the_broker_for_highwaters
from processor.faust_fixes.recovery_idle import shorten_recovery_idle_wait
from processor.faust_fixes.replay_costs import cheapen_changelog_replay
from processor.faust_fixes.seek_flow import seek_with_flow_stopped
from processor.faust_fixes.uncommitted_seek import seek_uncommitted_to_beginning

# The faust-streaming releases the fixes were verified against: from, up to (not included).
VERIFIED = ((0, 15, 3), (0, 16, 0))


class UnverifiedFaust(RuntimeError):
    """The installed faust-streaming is not a release these fixes were verified against."""


def check_version(version: str) -> None:
    try:
        found = tuple(int(part) for part in version.split(".")[:3])
    except ValueError:
        found = ()
    low, high = VERIFIED
    if not low <= found < high:
        raise UnverifiedFaust(
            f"faust-streaming {version}: the worker's fixes of Faust's defects are verified on "
            f"{'.'.join(map(str, low))} up to {'.'.join(map(str, high))} (docs/faust-fixes.md)"
        )


def apply(
    app: faust.App,
    *,
    record_lock: asyncio.Lock,
    on_fetched: Callable[[Any, Iterable[Any], Any], None],
    on_seek: Callable[[Iterable[Any]], None],
    source_topics: Iterable[str],
) -> None:
    """Install every fix, and the stream's hooks they call, on `app` and Faust's classes.

    `record_lock` is held by the stream per record (commits wait for it); `on_fetched` hears what
    each fetch handed over; `on_seek` which partitions were sought; `source_topics` are the
    topics whose never-committed partitions are read from their beginning after a seek.
    """
    check_version(faust.__version__)
    keep_queues_on_redundant_resume(app.flow_control)
    shorten_recovery_idle_wait()
    ask_the_broker_for_highwaters()
    cheapen_changelog_replay()
    deliver_without_tasks()
    seek_with_flow_stopped()
    seek_uncommitted_to_beginning()
    log_offset_gaps()
    flush_producer_buffer_fully()
    commit_between_records()
    report_fetches()
    app.sla_record_lock = record_lock  # type: ignore[attr-defined]
    app.sla_on_fetched = on_fetched  # type: ignore[attr-defined]
    app.sla_on_seek = on_seek  # type: ignore[attr-defined]
    app.sla_source_topics = set(source_topics)  # type: ignore[attr-defined]
