"""One ticket's life as each help desk's webhooks tell it, built from the documented payloads in
samples/ (SOURCES.md says where each comes from). Where the documentation has no example of an
event, the payload is the documented one with the fields that event changes set here, in code,
so that every adaptation is visible."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

SAMPLES = Path(__file__).resolve().parent / "samples"
Payload = dict[str, Any]


def sample(name: str) -> Payload:
    loaded: Payload = json.loads((SAMPLES / name).read_text())
    return loaded


def zendesk() -> list[Payload]:
    """Ticket 5158: opened LOW, raised to URGENT, answered by an agent, pending on the customer,
    a customer comment (ignored), open again, solved hours later."""
    created = sample("zendesk/ticket_created.json")  # verbatim: LOW, no tier tag (basic)
    opened_at = datetime.fromisoformat(created["time"][:26] + "+00:00")

    def later(minutes: int, type_: str, event: Payload, uid: str) -> Payload:
        payload = copy.deepcopy(created)
        moment = opened_at + timedelta(minutes=minutes)
        payload.update(type=f"zen:event-type:ticket.{type_}", event=event,
                       id=f"cbe4028c-7239-495d-b020-{uid:0>12}",
                       time=moment.isoformat().replace("+00:00", "Z"))  # fmt: skip
        return payload

    agent = {"id": "8447388090494", "is_staff": True, "name": "Agent"}
    customer = {"id": "8447388090999", "is_staff": False, "name": "Customer"}
    answer = {"comment": {"id": "9001", "body": "On it", "is_public": True, "author": agent}}
    thanks = {"comment": {"id": "9002", "body": "Here", "is_public": True, "author": customer}}
    return [
        created,
        later(8, "priority_changed", {"current": "URGENT", "previous": "LOW"}, "1"),
        later(18, "comment_added", answer, "2"),
        later(48, "status_changed", {"current": "PENDING", "previous": "OPEN"}, "3"),
        later(78, "comment_added", thanks, "4"),
        later(138, "status_changed", {"current": "OPEN", "previous": "PENDING"}, "5"),
        later(400, "status_changed", {"current": "SOLVED", "previous": "OPEN"}, "6"),
    ]


def jira() -> list[Payload]:
    """JRA-20002: created Minor, a summary and type change (verbatim; ignored), raised to
    Highest, a public comment by an agent, waiting for the customer, in progress, resolved."""
    updated = sample("jira/issue_updated.json")  # verbatim: summary and issuetype changed
    comment = sample("jira/comment_object_rest_v3_get_comment.json")  # the REST comment shape
    start = updated["timestamp"]
    created = copy.deepcopy(updated)
    del created["changelog"]
    created.update(webhookEvent="jira:issue_created", issue_event_type_name="issue_created",
                   timestamp=start - 5 * 60_000)  # fmt: skip
    # Get-issue's reporter (the webhook's `issue` is that shape); the docs' sample omits it.
    created["issue"]["fields"]["reporter"] = {"accountId": "99:customer-account",
                                              "accountType": "customer"}  # fmt: skip

    def change(minutes: int, number: int, field: str, before: str, after: str) -> Payload:
        payload = copy.deepcopy(updated)
        payload["timestamp"] = start + minutes * 60_000
        payload["changelog"] = {"id": 10124 + number, "items": [{
            "field": field, "fieldtype": "jira", "from": None, "fromString": before,
            "to": None, "toString": after}]}  # fmt: skip
        return payload

    commented = copy.deepcopy(updated)
    del commented["changelog"]
    public = {**comment, "jsdPublic": True}
    public["author"] = {**comment["author"], "accountType": "atlassian"}
    commented.update(webhookEvent="comment_created", timestamp=start + 10 * 60_000,
                     comment=public)  # fmt: skip
    return [
        created,
        updated,
        change(3, 1, "priority", "Minor", "Highest"),
        commented,
        change(40, 2, "status", "In Progress", "Waiting for customer"),
        change(100, 3, "status", "Waiting for customer", "In Progress"),
        change(160, 4, "status", "In Progress", "Resolved"),
    ]


def servicenow() -> list[Payload]:
    """INC0000046 as the business rule of docs/ingest/servicenow.md posts it: inserted
    (priority 3), raised to 1, commented by an agent too late, on hold awaiting the caller, in progress,
    resolved."""
    record = sample("servicenow/incident_get_record.json")["result"]  # verbatim record
    opened = datetime.strptime(record["sys_updated_on"] + "Z", "%Y-%m-%d %H:%M:%S%z")
    version = int(record["sys_mod_count"])

    def update(minutes: int, changed: list[str], fields: Payload, **extra: Any) -> Payload:
        nonlocal version, record
        version += 1
        previous = {"state": record["state"], "priority": record["priority"]}
        record = {**record, **fields, "sys_mod_count": str(version),
                  "sys_updated_on": f"{opened + timedelta(minutes=minutes):%Y-%m-%d %H:%M:%S}"}  # fmt: skip
        return {"operation": "update", "changed": changed, "previous": previous,
                "record": record, **extra}  # fmt: skip

    inserted = {"operation": "insert", "changed": [], "record": record}
    return [
        inserted,
        update(5, ["priority", "urgency"], {"priority": "1", "urgency": "1"}),
        update(25, ["comments"], {"sys_updated_by": "beth.anglin"}, comment_by_agent=True),
        update(30, ["state", "hold_reason"], {"state": "3", "hold_reason": "1"}),
        update(50, ["comments"], {"sys_updated_by": "abel.tuter"}, comment_by_agent=False),
        update(90, ["state", "hold_reason"], {"state": "2", "hold_reason": ""}),
        update(150, ["state"], {"state": "6"}),
    ]


FLOWS = {"zendesk": zendesk, "jira": jira, "servicenow": servicenow}


def _zendesk_time(payload: Payload) -> datetime:
    return datetime.fromisoformat(payload["time"][:26].rstrip("Z") + "+00:00")


def _set_zendesk_time(payload: Payload, moment: datetime) -> None:
    payload["time"] = moment.isoformat().replace("+00:00", "Z")


def _jira_time(payload: Payload) -> datetime:
    return datetime.fromtimestamp(payload["timestamp"] / 1000, UTC)


def _set_jira_time(payload: Payload, moment: datetime) -> None:
    payload["timestamp"] = round(moment.timestamp() * 1000)


_SERVICENOW: Final = "%Y-%m-%d %H:%M:%S"


def _servicenow_time(payload: Payload) -> datetime:
    stamp = payload["record"]["sys_updated_on"]
    return datetime.strptime(stamp, _SERVICENOW).replace(tzinfo=UTC)


def _set_servicenow_time(payload: Payload, moment: datetime) -> None:
    payload["record"] = {**payload["record"], "sys_updated_on": f"{moment:{_SERVICENOW}}"}


_TIMES = {
    "zendesk": (_zendesk_time, _set_zendesk_time),
    "jira": (_jira_time, _set_jira_time),
    "servicenow": (_servicenow_time, _set_servicenow_time),
}


def rescheduled(source: str, start: datetime, factor: float) -> list[tuple[datetime, Payload]]:
    """The source's flow moved to begin at `start`, its spans divided by `factor` (720: the
    demo policy's hour of five seconds): each payload with the instant it happens, which is
    its own time (ServiceNow's to the second, as sys_updated_on carries it)."""
    read, write = _TIMES[source]
    flow = FLOWS[source]()
    first = min(read(payload) for payload in flow)
    moved = []
    for payload in flow:
        payload = copy.deepcopy(payload)
        write(payload, start + (read(payload) - first) / factor)
        moved.append((read(payload), payload))
    return moved
