"""The contract's severity classification for ticket.opened without a severity."""

from __future__ import annotations

from typing import Any

import pytest

from processor.sla import engine
from processor.sla.classification import classify
from processor.sla.exceptions import Rejected
from schemas.cloudevents import OpenedData, Severity, TicketOpened
from schemas.outputs import data as output_data

from .factories import DAY, DEFAULT_POLICY, MIN, T0, H, Subject, make_event, of_type, parse_time

# (impact, problem_type, workaround_available, expected severity); None = field absent.
LOW = [
    (None, "question", None),
    (None, "advice", None),
    (None, "documentation", None),
    (None, "enhancement", None),
    (None, "enhancement_request", None),
    ("none", None, None),
    ("none", None, False),
    ("none", "billing", False),
    ("none", "platform", False),
]
URGENT_PROBLEMS = ["platform", "network", "web_services", "api", "vpn", "apn", "connectivity"]
URGENT = [("service_down", p, False) for p in URGENT_PROBLEMS]
HIGH = [
    ("service_down", None, False),
    ("service_down", "billing", False),
    ("service_down", "sim_reset", False),
    ("partial", None, False),
    ("partial", "provisioning", False),
    *[("partial", p, False) for p in URGENT_PROBLEMS],
]
NORMAL = [
    ("minor", None, None),
    ("minor", None, False),
    ("minor", None, True),
    ("minor", "platform", False),
    ("service_down", "platform", True),
    ("service_down", "connectivity", True),
    ("service_down", None, True),
    ("partial", None, True),
    ("partial", "network", True),
]
CASES = [
    *[(*case, "low") for case in LOW],
    *[(*case, "urgent") for case in URGENT],
    *[(*case, "high") for case in HIGH],
    *[(*case, "normal") for case in NORMAL],
]
UNCLASSIFIABLE = [
    (None, None, None),
    (None, None, True),
    (None, None, False),
    (None, "billing", None),
    (None, "platform", False),
]

# Premium targets differ per severity, so the breach instant tells the classified severity.
PREMIUM_TARGET = {"urgent": 15 * MIN, "high": 60 * MIN, "normal": 4 * H, "low": 8 * H}
FIRST_STEP = {"urgent": [("urgent", 1)], "high": [("high", 1)], "normal": [], "low": []}


def _fields(impact: str | None, problem: str | None, workaround: bool | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if impact is not None:
        data["impact"] = impact
    if problem is not None:
        data["problem_type"] = problem
    if workaround is not None:
        data["workaround_available"] = workaround
    return data


def _case_id(impact: str | None, problem: str | None, workaround: bool | None, *_: Any) -> str:
    return f"{impact or '-'}/{problem or '-'}/{'-' if workaround is None else workaround}"


def _opened(**data: Any) -> OpenedData:
    event = make_event(
        "ticket.opened", "TCK-1", T0, {"customer_id": "C", "support_tier": "premium", **data}
    )
    assert isinstance(event, TicketOpened)
    return event.data


@pytest.mark.parametrize(
    ("impact", "problem", "workaround", "expected"), CASES, ids=[_case_id(*c) for c in CASES]
)
def test_classify_directly(
    impact: str | None, problem: str | None, workaround: bool | None, expected: str
) -> None:
    data = _opened(**_fields(impact, problem, workaround))
    assert classify(data, DEFAULT_POLICY.classification) == Severity(expected)


@pytest.mark.parametrize(
    ("impact", "problem", "workaround", "expected"), CASES, ids=[_case_id(*c) for c in CASES]
)
def test_classified_severity_drives_the_engine(
    impact: str | None, problem: str | None, workaround: bool | None, expected: str
) -> None:
    ticket = Subject()
    decision = ticket.send(
        "ticket.opened",
        T0,
        {"customer_id": "C", "support_tier": "premium", **_fields(impact, problem, workaround)},
    )
    assert [(output_data(o)["severity"], output_data(o)["step"]) for o in decision.outputs] == (
        FIRST_STEP[expected]
    )
    ticket.advance(T0 + DAY)
    (breach,) = of_type(ticket.outputs, "sla.breach")
    assert output_data(breach)["severity"] == expected
    assert parse_time(output_data(breach)["due_at"]) == T0 + PREMIUM_TARGET[expected]


@pytest.mark.parametrize(
    ("impact", "problem", "workaround"), UNCLASSIFIABLE, ids=[_case_id(*c) for c in UNCLASSIFIABLE]
)
def test_unclassifiable_directly(
    impact: str | None, problem: str | None, workaround: bool | None
) -> None:
    data = _opened(**_fields(impact, problem, workaround))
    assert classify(data, DEFAULT_POLICY.classification) is None


@pytest.mark.parametrize(
    ("impact", "problem", "workaround"), UNCLASSIFIABLE, ids=[_case_id(*c) for c in UNCLASSIFIABLE]
)
def test_unclassifiable_ticket_is_rejected(
    impact: str | None, problem: str | None, workaround: bool | None
) -> None:
    event = make_event(
        "ticket.opened",
        "TCK-1",
        T0,
        {"customer_id": "C", "support_tier": "basic", **_fields(impact, problem, workaround)},
    )
    with pytest.raises(Rejected) as info:
        engine.decide(None, event, DEFAULT_POLICY)
    assert info.value.reason == "unclassifiable"


@pytest.mark.parametrize(
    ("given", "impact", "problem", "workaround"),
    [
        ("low", "service_down", "platform", False),
        ("urgent", "none", "question", True),
        ("normal", None, None, None),
        ("high", "minor", None, True),
    ],
    ids=["low-over-urgent", "urgent-over-low", "no-impact-needed", "high-over-normal"],
)
def test_a_given_severity_is_not_reclassified(
    given: str, impact: str | None, problem: str | None, workaround: bool | None
) -> None:
    ticket = Subject()
    ticket.open(T0, given, "premium", **_fields(impact, problem, workaround))
    ticket.advance(T0 + DAY)
    (breach,) = of_type(ticket.outputs, "sla.breach")
    assert output_data(breach)["severity"] == given
    assert parse_time(output_data(breach)["due_at"]) == T0 + PREMIUM_TARGET[given]
