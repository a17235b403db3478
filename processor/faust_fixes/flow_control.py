"""Recovery empties the agents' queues on a resume that follows no suspension (record loss)."""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent


def keep_queues_on_redundant_resume(flow_control: FlowControlEvent) -> None:
    """Work round a record loss in faust-streaming 0.15 recovery.

    `FlowControlEvent.resume()` always empties every agent's queue. That is right after a
    suspension (a rebalance), but recovery calls it twice: once when it starts reading the
    changelogs, and again in `Recovery.on_recovery_completed` after awaiting
    `consumer.perform_seek()` with the stream partitions already resumed and the fetcher
    running. Records fetched during that seek are then dropped unprocessed; read past, they are
    not fetched again, and the records after them get committed: a backlog after a restart loses
    its first records (seen in both processing guarantees). A resume while flow is already
    active has nothing stale to drop, so it clears nothing here.
    """
    resume = flow_control.resume

    def resume_clearing_only_after_suspend() -> None:
        if flow_control.is_active():
            flow_control._suspend.clear()
            flow_control._resume.set()
            return
        resume()

    flow_control.resume = resume_clearing_only_after_suspend  # type: ignore[method-assign]
