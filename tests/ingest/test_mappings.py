"""The built-in webhook mappings on the help desks' documented payloads (samples/, flows.py),
and the mapping grammar's refusals."""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.ingest import mapping
from processor.ingest.mapping import MappingError, Unmapped
from processor.replay import read_events, replay
from processor.sla.policy import load_policy
from schemas.cloudevents import parse_event

from .flows import FLOWS, sample

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def mapped(source: str, payloads: list[dict[str, Any]]) -> list[bytes]:
    chosen = mapping.load(source)
    return [raw for payload in payloads for raw in mapping.events(chosen, payload)]


def outputs(lines: list[bytes]) -> list[tuple[str, str, int | None]]:
    result = replay(read_events(iter(lines), io.StringIO()), load_policy(None), NOW, io.StringIO())
    return [(o.type, o.time.isoformat(), getattr(o, "step", getattr(o, "cycle", None)))
            for o in result.outputs]  # fmt: skip


# Under the seed's policy (docs: the flows). Each ticket is raised to urgent minutes after it
# opened: escalation step 1 at the raise, the next ones 2 h and 4 h after the opening; updates
# every 2 h from the response, the paused time added.
EXPECTED = {
    "zendesk": [
        ("sla.escalation", "2025-01-08T10:20:07.672717+00:00", 1),
        ("sla.escalation", "2025-01-08T12:12:07.672717+00:00", 2),
        # responded 10:30:07, pending 11:00:07 to 12:30:07: due 10:30:07 + 2 h + 1.5 h
        ("sla.update_due", "2025-01-08T14:00:07.672717+00:00", 1),
        ("sla.escalation", "2025-01-08T14:12:07.672717+00:00", 3),
        ("sla.update_due", "2025-01-08T16:00:07.672717+00:00", 2),
    ],  # solved at 16:52:07
    "jira": [
        ("sla.escalation", "2020-11-27T12:36:56.302000+00:00", 1),
        ("sla.escalation", "2020-11-27T14:28:56.302000+00:00", 2),
    ],  # resolved at 15:13:56, before step 3 (16:28:56) and the update due (15:43:56)
    "servicenow": [
        ("sla.escalation", "2015-11-01T22:42:27+00:00", 1),
        # raised at 22:42:27: the response was due 15 min later; it came at 23:02:27
        ("sla.breach", "2015-11-01T22:57:27+00:00", None),
        ("sla.escalation", "2015-11-02T00:37:27+00:00", 2),
    ],  # resolved at 01:07:27
}


@pytest.mark.parametrize("source", sorted(FLOWS))
def test_a_flow_maps_to_the_events_the_seed_expects(source: str) -> None:
    lines = mapped(source, FLOWS[source]())
    events = [parse_event(raw) for raw in lines]  # the stream's own parser takes each
    assert [e.type for e in events][:2] == ["ticket.opened", "ticket.severity_changed"]
    assert events[-1].type == "ticket.resolved"
    assert len({e.subject for e in events}) == 1
    assert len({e.id for e in events}) == len(events)
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert outputs(lines) == EXPECTED[source]


@pytest.mark.parametrize("source", sorted(FLOWS))
def test_a_retried_webhook_maps_to_the_same_events(source: str) -> None:
    flow = FLOWS[source]()
    again = [copy.deepcopy(payload) for payload in flow]
    assert mapped(source, again) == mapped(source, flow)
    retried = [p for payload in flow for p in (payload, payload)]  # each delivered twice
    assert outputs(mapped(source, retried)) == EXPECTED[source]


def test_the_opening_fields_come_from_where_the_mappings_say() -> None:
    zendesk = sample("zendesk/ticket_created.json")
    zendesk["detail"].update(priority="HIGH", tags=["vip", "sla_premium"], organization_id=None)
    [raw] = mapped("zendesk", [zendesk])
    assert orjson.loads(raw)["data"] == {"customer_id": "8447388090494",  # the requester
                                         "support_tier": "premium", "severity": "high"}  # fmt: skip
    zendesk["detail"]["priority"] = None  # a ticket without priority counts as normal
    assert orjson.loads(mapped("zendesk", [zendesk])[0])["data"]["severity"] == "normal"
    created = sample("servicenow/incident_updated_patch_response.json")["result"]
    [raw] = mapped("servicenow", [{"operation": "insert", "record": {**created,
                                                                      "u_support_tier": "select"}}])  # fmt: skip
    assert orjson.loads(raw)["data"] == {"customer_id": created["company"]["value"],
                                         "support_tier": "select", "severity": "urgent"}  # fmt: skip


def test_what_the_sla_does_not_use_is_ignored() -> None:
    jira = sample("jira/issue_updated.json")  # summary and issue type changed
    assert mapped("jira", [jira]) == []
    attachment = sample("zendesk/ticket_attachment_linked_to_comment.json")
    assert mapped("zendesk", [attachment]) == []
    record = sample("servicenow/incident_get_record.json")["result"]
    assert mapped("servicenow", [{"operation": "update", "changed": ["work_notes"],
                                  "record": record}]) == []  # fmt: skip


@pytest.mark.parametrize(
    ("source", "payload", "reason"),
    [
        ("zendesk", [], "unmapped_event"),
        ("zendesk", {"ticket": {"id": 1}}, "unmapped_event"),
        ("jira", {"issue": {"key": "X-1"}}, "unmapped_event"),
        # The documented POST response: an incident with neither company nor caller.
        ("servicenow", {"operation": "insert",
                        "record": sample("servicenow/incident_created_post_response.json")["result"]},
         "missing_field"),
        ("zendesk", {**sample("zendesk/ticket_created.json"), "time": "last tuesday"}, "bad_time"),
        ("jira", {**FLOWS["jira"]()[0], "timestamp": "soon"}, "bad_time"),
    ],
)  # fmt: skip
def test_a_payload_that_does_not_map_is_refused_with_its_reason(
    source: str, payload: Any, reason: str
) -> None:
    with pytest.raises(Unmapped) as refused:
        mapped(source, [payload])
    assert refused.value.reason == reason
    assert refused.value.reason in mapping.REASONS


def test_an_unknown_value_is_refused_without_echoing_it() -> None:
    inserted = FLOWS["servicenow"]()[0]
    inserted["record"]["priority"] = "SUPER-URGENT-SECRET"
    with pytest.raises(Unmapped) as refused:
        mapped("servicenow", [inserted])
    assert refused.value.reason == "unmapped_value"
    assert "data.severity" in str(refused.value)
    assert "SECRET" not in str(refused.value)


def test_a_priority_of_another_name_opens_normal_and_a_change_to_it_is_ignored() -> None:
    """Refusing would lose the ticket (help desks do not retry a 4xx) or the other changes of
    the same webhook: the ticket opens normal, and a change to an unknown priority keeps it."""
    jira = FLOWS["jira"]()
    jira[0]["issue"]["fields"]["priority"]["name"] = "P1 - Sev A"
    assert orjson.loads(mapped("jira", [jira[0]])[0])["data"]["severity"] == "normal"
    both = jira[4]  # a status change, with a priority change to a name the mapping lacks
    both["changelog"]["items"].insert(0, {"field": "priority", "toString": "P1 - Sev A"})
    assert [orjson.loads(raw)["type"] for raw in mapped("jira", [both])] == [
        "ticket.status_changed"]  # fmt: skip
    zendesk = FLOWS["zendesk"]()[1]
    zendesk["event"]["current"] = "CRITICAL"
    assert mapped("zendesk", [zendesk]) == []


def test_a_mapping_of_ones_own_replaces_the_built_in(tmp_path: Path) -> None:
    text = (Path(mapping.__file__).parent / "mappings" / "zendesk.toml").read_text()
    (tmp_path / "zendesk.toml").write_text(text.replace('subject = "{detail.id}"',
                                                        'subject = "ZD-{detail.id}"'))  # fmt: skip
    (tmp_path / "freshdesk.toml").write_text(
        'source = "freshdesk"\nsubject = "{{ticket}}-{ticket.id}"\ntime = "{at}"\n'
        '[[event]]\nname = "opened"\nwhen = { event = "created" }\ntype = "ticket.opened"\n'
        'id = "fd:{ticket.id}"\ndata.customer_id = "{ticket.company}"\n'
        'data.support_tier = "premium"\ndata.severity = "low"\n'
    )
    found = mapping.load_all(tmp_path)
    assert sorted(found) == ["freshdesk", "jira", "servicenow", "zendesk"]
    [raw] = mapping.events(found["zendesk"], sample("zendesk/ticket_created.json"))
    assert orjson.loads(raw)["subject"] == "ZD-5158"
    [raw] = mapping.events(found["freshdesk"], {"event": "created", "at": "2026-12-01T10:00:00+01:00",
                                                "ticket": {"id": 7, "company": "ACME"}})  # fmt: skip
    event = parse_event(raw)
    assert (event.subject, event.id, event.time.isoformat()) == (
        "{ticket}-7",
        "fd:7",
        "2026-12-01T09:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("source = 1", "x.toml: source"),
        ('source = "x"\nsubject = "{a}"\ntime = "{t}"\nevent = []\nextra = 1', "x.toml: extra"),
        ('source = "x"\nsubject = "{a}"\ntime = "{t}"\n[[event]]\nname = "a"\nwhen = {}\n'
         'type = "ticket.lost"\nid = "{a}"', "x.toml: event.0.type"),
        ('source = "x"\nsubject = "{a}"\ntime = "{t}"\n[[event]]\nname = "a"\n'
         'when = { b = { like = "c" } }\ntype = "ticket.closed"\nid = "{a}"',
         "x.toml: event.0.when.b: unknown operator 'like'"),
        ('source = "x"\nsubject = "{a}"\ntime = "{t}"\n[[event]]\nname = "a"\nwhen = {}\n'
         'type = "ticket.closed"\nid = "{a b}"', "x.toml: event.0.id"),
        ('source = "x"\nsubject = "{a}"\ntime = { path = "a..b" }\nevent = []', "x.toml: time"),
        ("source = [", "x.toml: "),
    ],
)  # fmt: skip
def test_an_invalid_mapping_file_names_the_file_and_field(
    tmp_path: Path, text: str, named: str
) -> None:
    (tmp_path / "x.toml").write_text(text)
    with pytest.raises(MappingError) as refused:
        mapping.load("x", tmp_path)
    assert str(refused.value).startswith(str(tmp_path / named)), str(refused.value)


def test_a_source_name_is_checked_before_any_file_is_read(tmp_path: Path) -> None:
    for name in ("../etc/passwd", "Zendesk", "", "a" * 40):
        with pytest.raises(MappingError, match="not a source name"):
            mapping.load(name, tmp_path)
    with pytest.raises(MappingError, match="no mapping for source 'nowhere'"):
        mapping.load("nowhere", tmp_path)
