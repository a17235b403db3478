"""Recovery's redundant resume keeps the queued records (`faust_fixes.flow_control`)."""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from processor.faust_fixes.flow_control import keep_queues_on_redundant_resume


async def test_a_resume_while_flowing_keeps_queued_records() -> None:
    flow = FlowControlEvent()
    keep_queues_on_redundant_resume(flow)
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()  # the start: nothing queued
    await queue.put(1)
    flow.resume()  # recovery's second resume, records already fetched
    assert queue.qsize() == 1
    flow.suspend()  # a rebalance: what is queued is stale, and is dropped at the resume
    flow.resume()
    assert queue.qsize() == 0
