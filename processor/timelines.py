"""Each ticket's timeline entries in a table of their own (changelogged like the states), written
in the unit of work that applies the event or fires the deadline; read by GET
/tickets/{id}/timeline. The entries are `processor.sla.timeline`'s."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson

from processor.sla import engine
from processor.sla.outputs import Output
from processor.sla.ticket import Ticket
from processor.sla.timeline import Entry, appended, event_entry, output_entries, rejected_entry
from processor.topology import Table
from schemas.cloudevents import InputEvent, TicketEvent


class Timelines:
    """Entries per ticket, at most `limit` each (0: none are kept); forgotten with the ticket."""

    def __init__(self, table: Table, limit: int) -> None:
        self.table = table
        self.limit = limit

    def get(self, ticket_id: str) -> tuple[list[Entry], int]:
        """The entries and how many older ones were dropped."""
        raw = self.table.get(ticket_id.encode())
        if raw is None:
            return [], 0
        stored = orjson.loads(raw)
        return stored["entries"], stored["dropped"]

    def applied(self, event: InputEvent, decision: engine.AnyDecision, now: datetime) -> None:
        """An event applied (or ignored as a repeat) and what it emitted at `now`."""
        if not self._kept(event) or not isinstance(event, TicketEvent):
            return
        if decision.duplicate:
            self._add(event.subject, [rejected_entry(event, "duplicate")])
            return
        assert isinstance(decision.state, Ticket)
        early = [o for o in decision.outputs if o.time < event.time]
        entries = [
            *output_entries(early, now),
            event_entry(event, decision.state),
            *output_entries(decision.outputs[len(early) :], now),
        ]
        self._add(event.subject, entries)

    def rejected(self, event: InputEvent, reason: str, known: bool) -> None:
        """An event refused: kept for a ticket the table knows, never for an unknown subject
        (rejected garbage must not make rows)."""
        if known and self._kept(event) and isinstance(event, TicketEvent):
            self._add(event.subject, [rejected_entry(event, reason)])

    def fired(
        self, domain: engine.Domain, subject: str, outputs: Sequence[Output], now: datetime
    ) -> None:
        if self.limit and outputs and domain is engine.Domain.TICKET:
            self._add(subject, output_entries(outputs, now))

    def forget(self, domain: engine.Domain, subject: str) -> None:
        if domain is engine.Domain.TICKET:
            self.table.pop(subject.encode(), None)

    def _kept(self, event: InputEvent) -> bool:
        return bool(self.limit) and engine.domain_of(event) is engine.Domain.TICKET

    def _add(self, subject: str, more: Iterable[Entry]) -> None:
        entries, dropped = self.get(subject)
        entries, cut = appended(entries, list(more), self.limit)
        value = {"dropped": dropped + cut, "entries": entries}
        self.table[subject.encode()] = orjson.dumps(value)
