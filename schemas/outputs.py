"""Output events on the wire: CloudEvents 1.0 JSON, keyed by subject, one function from an output
to its bytes and headers. Key order is fixed, so the bytes of an output are stable (replay and the
stream write the same bytes for the same output at the same emission instant)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from processor.sla.outputs import (
    Acknowledged,
    Breach,
    DeadlineWarning,
    Escalation,
    MaintenanceNotice,
    Output,
    Retraction,
    SurveyDue,
    Unacknowledged,
    UpdateDue,
)

SOURCE: Final = "sla-processor"
CONTENT_TYPE: Final = "application/cloudevents+json"
HEADERS: Final = (("content-type", CONTENT_TYPE.encode()),)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def iso_duration(span: timedelta) -> str:
    """ISO 8601 duration; days are 24 h, a negative span gets a leading minus (a common extension)."""
    sign, span = ("-", -span) if span < timedelta(0) else ("", span)
    hours, rest = divmod(span.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    second_text = (
        f"{seconds}.{span.microseconds:06d}".rstrip("0").rstrip(".")
        if span.microseconds
        else str(seconds)
    )
    clock = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    clock += f"{second_text}S" if seconds or span.microseconds else ""
    days = f"{span.days}D" if span.days else ""
    if not (days or clock):
        return "PT0S"
    return f"{sign}P{days}{'T' + clock if clock else ''}"


def _escalation_data(escalation: Escalation) -> dict[str, Any]:
    return {
        "ticket_id": escalation.ticket_id,
        "customer_id": escalation.customer_id,
        "severity": escalation.severity.value,
        "support_tier": escalation.tier.value,
        "cycle": escalation.cycle,
        "step": escalation.step,
        "after": iso_duration(escalation.after),
        "actions": [{"role": a.role.value, "action": a.action.value} for a in escalation.actions],
    }


def _update_data(update: UpdateDue) -> dict[str, Any]:
    return {
        "ticket_id": update.ticket_id,
        "customer_id": update.customer_id,
        "severity": update.severity.value,
        "cycle": update.cycle,
        "due_at": rfc3339(update.time),
        "frequency": iso_duration(update.frequency),
    }


def _breach_data(breach: Breach) -> dict[str, Any]:
    return {
        "ticket_id": breach.ticket_id,
        "customer_id": breach.customer_id,
        "severity": breach.severity.value,
        "support_tier": breach.tier.value,
        "target": breach.target,
        "due_at": rfc3339(breach.time),
    }


def _notice_data(notice: MaintenanceNotice) -> dict[str, Any]:
    data: dict[str, Any] = {
        "maintenance_id": notice.maintenance_id,
        "kind": notice.kind,
        "revision": notice.revision,
        "window_start": rfc3339(notice.window_start),
        "window_end": rfc3339(notice.window_end),
        "lead_time": iso_duration(notice.lead_time),
        "summary": notice.summary,
        "services": list(notice.services),
        "customers": list(notice.customers),
    }
    if notice.minimum_notice is not None:
        data["minimum_notice"] = iso_duration(notice.minimum_notice)
    if notice.offset is not None:
        data["reminder_offset"] = iso_duration(notice.offset)
    return data


def _warning_data(warning: DeadlineWarning) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ticket_id": warning.ticket_id,
        "customer_id": warning.customer_id,
        "severity": warning.severity.value,
        "support_tier": warning.tier.value,
        "cycle": warning.cycle,
        "target": warning.target.value,
        "point": warning.point,
        "due_at": rfc3339(warning.due_at),
        "remaining": iso_duration(warning.remaining),
    }
    if warning.step is not None:
        data["step"] = warning.step
    return data


def _actions(actions: Any) -> list[dict[str, str]]:
    return [{"role": a.role.value, "action": a.action.value} for a in actions]


def _unacknowledged_data(missed: Unacknowledged) -> dict[str, Any]:
    return {
        "ticket_id": missed.ticket_id,
        "customer_id": missed.customer_id,
        "severity": missed.severity.value,
        "support_tier": missed.tier.value,
        "cycle": missed.cycle,
        "step": missed.step,
        "escalated_at": rfc3339(missed.escalated_at),
        "within": iso_duration(missed.within),
        "due_at": rfc3339(missed.time),
        "missed": missed.missed,
        "then": None if missed.then is None else missed.then.value,
        "actions": _actions(missed.actions),
    }


def _acknowledged_data(acknowledged: Acknowledged) -> dict[str, Any]:
    return {
        "ticket_id": acknowledged.ticket_id,
        "customer_id": acknowledged.customer_id,
        "severity": acknowledged.severity.value,
        "support_tier": acknowledged.tier.value,
        "cycle": acknowledged.cycle,
        "step": acknowledged.step,
        "role": acknowledged.role,
        "escalated_at": rfc3339(acknowledged.escalated_at),
        "acknowledged_at": rfc3339(acknowledged.time),
        "latency": iso_duration(acknowledged.latency),
        "within": iso_duration(acknowledged.within),
        "event_id": acknowledged.event_id,
    }


def _retraction_data(retraction: Retraction) -> dict[str, Any]:
    return {
        "ticket_id": retraction.ticket_id,
        "customer_id": retraction.customer_id,
        "retracted_id": retraction.retracted_id,
        "retracted_type": retraction.retracted_type,
        "retracted_time": rfc3339(retraction.time),
        "reason": "late_event",
        "late_event": {
            "id": retraction.event_id,
            "type": retraction.event_type,
            "time": rfc3339(retraction.event_time),
        },
    }


def _survey_data(survey: SurveyDue) -> dict[str, Any]:
    return {
        "ticket_id": survey.ticket_id,
        "customer_id": survey.customer_id,
        "severity": survey.severity.value,
        "support_tier": survey.tier.value,
        "cycle": survey.cycle,
        "opened_at": rfc3339(survey.opened_at),
        "responded_at": None if survey.responded_at is None else rfc3339(survey.responded_at),
        "resolved_at": rfc3339(survey.resolved_at),
        "agent_id": survey.agent_id,
    }


_DATA: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    Escalation: _escalation_data,
    UpdateDue: _update_data,
    Breach: _breach_data,
    MaintenanceNotice: _notice_data,
    DeadlineWarning: _warning_data,
    Unacknowledged: _unacknowledged_data,
    Acknowledged: _acknowledged_data,
    Retraction: _retraction_data,
    SurveyDue: _survey_data,
}


def data(output: Output) -> dict[str, Any]:
    """The output's CloudEvent `data`, as the contract names its fields (without `emitted_at`)."""
    data = _DATA[type(output)](output)
    data["policy"] = output.policy
    return data


def cloudevent(output: Output, emitted_at: datetime) -> dict[str, Any]:
    """The output as CloudEvent attributes, in a fixed key order so encodings are byte-stable."""
    data = _DATA[type(output)](output)
    data["policy"] = output.policy
    data["emitted_at"] = rfc3339(emitted_at)
    return {
        "specversion": "1.0",
        "id": output.id,
        "source": SOURCE,
        "type": output.type,
        "time": rfc3339(output.time),
        "subject": output.subject,
        "datacontenttype": "application/json",
        "data": data,
    }


def encode(output: Output, emitted_at: datetime) -> bytes:
    """The output's record value: its CloudEvent as JSON bytes (headers: `HEADERS`)."""
    return orjson.dumps(cloudevent(output, emitted_at))
