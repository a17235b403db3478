"""Deliveries race the seek to committed offsets at the end of recovery (record loss)."""

from __future__ import annotations

from typing import Any

import faust.transport.consumer as faust_consumer


def seek_with_flow_stopped(consumer_class: Any = faust_consumer.Consumer) -> None:
    """Work round a record loss in faust-streaming 0.15: deliveries racing the seek to commits.

    `Recovery.on_recovery_completed` resumes the stream partitions first and only then awaits
    `Consumer.perform_seek()`, with the flow active. The fetcher goes on delivering the batch
    it fetched from the old position while the seek resets Faust's read offsets to the
    committed ones; the next record of that batch then lies past the reset offset, and Faust
    records the offsets in between as a *gap*, which it counts as acknowledged although their
    records may still wait, unprocessed, in the agent's queue. A commit in that moment and a
    crash before they are processed loses them. (Seen in the rebalance test's logs: records
    handled before the seek completed, the offsets before them never delivered again, a gap
    logged by `log_offset_gaps` in 2 of 3 runs.) With the flow stopped for the seek, a fetch
    that returns meanwhile is dropped and sought back to the committed offsets (Faust's own
    path for a stopped flow), so nothing is delivered until the seek is done. Every caller resumes the flow after the seek;
    if the seek fails, the flow is put back as it was.
    """
    if getattr(consumer_class.perform_seek, "_flow_stopped", False):
        return
    perform_seek = consumer_class.perform_seek

    async def perform_seek_with_flow_stopped(self: Any) -> None:
        flowing = self.flow_active
        self.stop_flow()
        try:
            await perform_seek(self)
        except BaseException:
            if flowing:
                self.resume_flow()
            raise

    perform_seek_with_flow_stopped._flow_stopped = True  # type: ignore[attr-defined]
    consumer_class.perform_seek = perform_seek_with_flow_stopped
