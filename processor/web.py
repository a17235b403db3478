"""HTTP views on the worker's web port: Prometheus metrics and per-subject SLA state queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from faust.web import Request, Response, View
from prometheus_client.exposition import choose_encoder

from processor import codec, health, timelines
from processor.sla import engine, ticket
from processor.sla.maintenance import Maintenance, next_reminder
from processor.sla.policy import Policy
from processor.sla.policy_set import PolicySet
from processor.sla.ticket import Ticket
from processor.sla.timeline import timeline
from processor.topology import Topology
from schemas.outputs import iso_duration, rfc3339

_FAUST_INDEX = "faust.web.apps.production_index:blueprint"


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def describe_ticket(state: Ticket, policy: Policy) -> dict[str, Any]:
    step = ticket.next_step(state, policy)
    return {
        "ticket_id": state.ticket_id,
        "customer_id": state.customer_id,
        "severity": state.severity.value,
        "support_tier": state.tier.value,
        "phase": state.phase.value,
        "policy": state.policy,
        "cycle": state.cycle,
        "clock_start": rfc3339(state.cycle_start),
        "opened_at": rfc3339(state.opened_at),
        "responded_at": _instant(state.responded_at),
        "deadlines": {
            "initial_response": _instant(state.response_due),
            "next_escalation": _instant(step[1]) if step else None,
            "update_due": _instant(ticket.update_due(state, policy)),
        },
        "next_escalation_step": step[0].number if step else None,
        "escalation_steps_done": sorted(f"{sev.value}:{n}" for sev, n in state.steps_done),
        "paused": state.paused_since is not None,
        "status": state.status,
        "update_cycle": state.update_cycle,
        "breaches": [] if state.breached_at is None else [
            {"target": "initial_response", "due_at": rfc3339(state.breached_at)}
        ],
    }  # fmt: skip


def describe_maintenance(state: Maintenance, policy: Policy) -> dict[str, Any]:
    reminder = next_reminder(state, policy)
    return {
        "maintenance_id": state.maintenance_id,
        "kind": state.kind,
        "policy": state.policy,
        "revision": state.revision,
        "window_start": rfc3339(state.window_start),
        "window_end": rfc3339(state.window_end),
        "cancelled": state.cancelled_at is not None,
        "next_reminder": _instant(reminder[1]) if reminder else None,
        "next_reminder_offset": iso_duration(reminder[0]) if reminder else None,
    }


def install(
    topology: Topology,
    policies: PolicySet,
    registry: Any,
    clock: Callable[[], datetime],
    facts: Callable[[], health.Facts],
) -> None:
    """Register /metrics, /healthz, /readyz, /tickets/{id}, /tickets/{id}/timeline and
    /maintenance/{id} on the Faust web server."""
    app = topology.app
    # With its statistics off Faust serves a static {"status": "OK"} at "/" instead; it is not
    # a health check (it answers while nothing works): not served either.
    served = app.web.blueprints._enabled
    served[:] = [(prefix, bp) for prefix, bp in served if bp != _FAUST_INDEX]

    def current(raw: bytes) -> engine.State | None:
        # Show the state as of now: deadlines fired by ticks are not written back per ticket.
        return engine.advance(codec.decode_state(raw), clock(), policies).state

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # OpenMetrics to a scraper that asks for it (Prometheus does), else the text format.
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
            return self.bytes(encoder(registry), headers={"Content-Type": content_type})

    @app.page("/healthz")
    class LivenessView(View):
        async def get(self, request: Request) -> Response:
            status, answer = health.body(*health.liveness(facts()))
            return self.json(answer, status=status)

    @app.page("/readyz")
    class ReadinessView(View):
        async def get(self, request: Request) -> Response:
            status, answer = health.body(*health.readiness(facts()))
            return self.json(answer, status=status)

    @app.page("/tickets/{ticket_id}")
    class TicketView(View):
        @app.table_route(table=topology.tickets, match_info="ticket_id")  # type: ignore[arg-type]  # faust types views without match_info arguments
        async def get(self, request: Request, ticket_id: str) -> Response:
            raw = topology.tickets.get(ticket_id.encode())
            state = current(raw) if raw is not None else None
            if not isinstance(state, Ticket):
                return self.json({"error": "not_found", "ticket_id": ticket_id}, status=404)
            return self.json(describe_ticket(state, engine.of(state, policies).policy))

    @app.page("/tickets/{ticket_id}/timeline")
    class TimelineView(View):
        @app.table_route(table=topology.tickets, match_info="ticket_id")  # type: ignore[arg-type]
        async def get(self, request: Request, ticket_id: str) -> Response:
            raw = topology.tickets.get(ticket_id.encode())
            state = current(raw) if raw is not None else None
            if raw is None or not isinstance(state, Ticket):
                return self.json({"error": "not_found", "ticket_id": ticket_id}, status=404)
            entries, dropped = timelines.entries(codec.decode_value(raw)[2])
            policy = engine.of(state, policies).policy
            return self.json(timeline(ticket_id, entries, dropped, state, policy, clock()))

    @app.page("/maintenance/{maintenance_id}")
    class MaintenanceView(View):
        @app.table_route(table=topology.maintenances, match_info="maintenance_id")  # type: ignore[arg-type]
        async def get(self, request: Request, maintenance_id: str) -> Response:
            raw = topology.maintenances.get(maintenance_id.encode())
            state = current(raw) if raw is not None else None
            if not isinstance(state, Maintenance):
                return self.json(
                    {"error": "not_found", "maintenance_id": maintenance_id}, status=404
                )
            return self.json(describe_maintenance(state, engine.of(state, policies).policy))
