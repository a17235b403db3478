"""A held tick that finds nothing read since the take-over resumes the consumer's stream
partitions, never a changelog partition (`Holds._kick_if_stalled`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from .test_stream_ticks import _TP, a_stream


@dataclass
class _Consumer:
    assigned: set[_TP]
    calls: list[Any] = field(default_factory=list)

    def assignment(self) -> set[_TP]:
        return set(self.assigned)

    def resume_partitions(self, tps: set[_TP]) -> None:
        self.calls.append(("resume", tps))

    def resume_flow(self) -> None:
        self.calls.append(("flow",))


def _app(consumer: _Consumer) -> Any:
    calls = consumer.calls

    class Fetcher:
        async def maybe_start(self) -> None:
            calls.append(("fetcher",))

    class FlowControl:
        def resume(self) -> None:
            calls.append(("queues",))

    tables = SimpleNamespace(changelog_topics={"app-tickets-changelog"})
    return SimpleNamespace(consumer=consumer, tables=tables, _fetcher=Fetcher(),
                           flow_control=FlowControl())  # fmt: skip


async def test_a_kick_resumes_the_stream_partitions_and_never_a_changelog() -> None:
    sla, _, _ = a_stream(tickets=0)
    stream_tps = {_TP("in.tickets", 0), _TP("app-ticks", 0), _TP("app-rekeyed", 0)}
    consumer = _Consumer(stream_tps | {_TP("app-tickets-changelog", 0)})
    sla.holds.topology = SimpleNamespace(app=_app(consumer))  # type: ignore[assignment]
    await sla.holds._kick_if_stalled()
    assert consumer.calls == []  # nothing found stalled: nothing done
    sla.holds._kick = True
    await sla.holds._kick_if_stalled()
    assert consumer.calls == [("resume", stream_tps), ("queues",), ("flow",), ("fetcher",)]
    await sla.holds._kick_if_stalled()  # once per finding
    assert len(consumer.calls) == 4
