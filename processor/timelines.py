"""Each ticket's timeline entries, kept in the ticket's own table value (`codec`: a trailing
text) so that the state write each event and tick makes anyway carries them: no table of their
own, no second changelog record per event (which cost a third of the throughput, measured in
bench/results/timeline-cost-2026-12-03/). Read by GET /tickets/{id}/timeline.

The text is JSON lines: first the count of entries dropped, then one entry per line
(`processor.sla.timeline`'s). Appending copies the text, never parses it; only a full timeline
is split, to drop its oldest entries after the opening.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson

from processor.sla import engine
from processor.sla.outputs import Output
from processor.sla.ticket import Ticket
from processor.sla.timeline import Entry, event_entry, output_entries, rejected_entry
from schemas.cloudevents import InputEvent, TicketEvent


def entries(text: str) -> tuple[list[Entry], int]:
    """The entries of a timeline text and how many older ones were dropped."""
    if not text:
        return [], 0
    head, *lines = text.split("\n")
    return [orjson.loads(line) for line in lines], int(head)


class Timelines:
    """Appends to timeline texts, at most `limit` entries each (0: none are kept)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def applied(
        self, text: str, event: InputEvent, decision: engine.AnyDecision, now: datetime
    ) -> str:
        """An event applied (or ignored as a repeat) and what it emitted at `now`."""
        if not self._kept(event) or not isinstance(event, TicketEvent):
            return text
        if decision.duplicate:
            return self._add(text, [rejected_entry(event, "duplicate")])
        assert isinstance(decision.state, Ticket)
        early = [o for o in decision.outputs if o.time < event.time]
        return self._add(text, [
            *output_entries(early, now),
            event_entry(event, decision.state),
            *output_entries(decision.outputs[len(early) :], now),
        ])  # fmt: skip

    def rejected(self, text: str, event: InputEvent, reason: str) -> str:
        """An event a known ticket refused."""
        if not self._kept(event) or not isinstance(event, TicketEvent):
            return text
        return self._add(text, [rejected_entry(event, reason)])

    def fired(
        self, text: str, domain: engine.Domain, outputs: Sequence[Output], now: datetime
    ) -> str:
        if not self.limit or not outputs or domain is not engine.Domain.TICKET:
            return text
        return self._add(text, output_entries(outputs, now))

    def _kept(self, event: InputEvent) -> bool:
        return bool(self.limit) and engine.domain_of(event) is engine.Domain.TICKET

    def _add(self, text: str, more: Sequence[Entry]) -> str:
        lines = "\n".join(orjson.dumps(entry).decode() for entry in more)
        if not text:
            text = "0"
        text = f"{text}\n{lines}"
        if text.count("\n") <= self.limit:
            return text
        head, first, *rest = text.split("\n")
        keep = rest[len(rest) - (self.limit - 1) :] if self.limit > 1 else []
        dropped = int(head) + len(rest) - len(keep)
        return "\n".join([str(dropped), first, *keep])
