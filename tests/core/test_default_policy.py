"""Every cell of the seed's tables, checked through the engine under the packaged default policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.outputs import data as output_data

from .factories import (
    DAY,
    MIN,
    SEC,
    T0,
    H,
    Subject,
    assert_data_includes,
    breach_times,
    escalation_keys,
    of_type,
    update_keys,
)

# The seed: "Response and escalation times", initial response time per support tier.
RESPONSE_TARGETS = [
    ("urgent", "premium", 15 * MIN),
    ("urgent", "select", 15 * MIN),
    ("urgent", "basic", 15 * MIN),
    ("high", "premium", 60 * MIN),
    ("high", "select", 90 * MIN),
    ("high", "basic", 120 * MIN),
    ("normal", "premium", 4 * H),
    ("normal", "select", 6 * H),
    ("normal", "basic", 8 * H),
    ("low", "premium", 8 * H),
    ("low", "select", 8 * H),
    ("low", "basic", 8 * H),
]

# The seed: update frequency, "Every 2 hours" for urgent and "Daily" for high, until closed.
UPDATE_FREQUENCY = [("urgent", 2 * H), ("high", DAY)]
NO_UPDATES = ["normal", "low"]

# The contract's escalation matrix: (severity, step, after, actions as {role, action}).
ESCALATION_MATRIX = [
    (
        "urgent",
        1,
        timedelta(0),
        [
            {"role": "tier2", "action": "route"},
            {"role": "support_manager", "action": "engage"},
            {"role": "support_director", "action": "notify"},
            {"role": "support_vp", "action": "notify"},
        ],
    ),
    ("urgent", 2, 2 * H, [{"role": "support_director", "action": "engage"}]),
    ("urgent", 3, 4 * H, [{"role": "support_vp", "action": "engage"}]),
    (
        "high",
        1,
        timedelta(0),
        [{"role": "tier1", "action": "route"}, {"role": "support_manager", "action": "notify"}],
    ),
    (
        "high",
        2,
        2 * H,
        [{"role": "tier2", "action": "route"}, {"role": "support_manager", "action": "notify"}],
    ),
    ("high", 3, 4 * H, [{"role": "support_director", "action": "engage"}]),
]
LADDER_LENGTH = {"urgent": 3, "high": 3}
TIERS = ["premium", "select", "basic"]


def _id(*parts: object) -> str:
    return "-".join(str(p) for p in parts)


@pytest.mark.parametrize(
    ("severity", "tier", "target"),
    RESPONSE_TARGETS,
    ids=[_id(s, t) for s, t, _ in RESPONSE_TARGETS],
)
def test_initial_response_target(severity: str, tier: str, target: timedelta) -> None:
    ticket = Subject()
    ticket.open(T0, severity, tier, customer_id="CUST-42")

    ticket.advance(T0 + target - SEC)
    assert breach_times(ticket.outputs) == []

    decision = ticket.advance(T0 + target)
    breaches = of_type(decision.outputs, "sla.breach")
    assert len(breaches) == 1
    (breach,) = breaches
    assert breach.time == T0 + target
    assert breach.subject == "TCK-1"
    assert_data_includes(
        breach,
        {
            "ticket_id": "TCK-1",
            "severity": severity,
            "support_tier": tier,
            "target": "initial_response",
            "due_at": T0 + target,
        },
    )
    ticket.advance(T0 + 30 * DAY)
    assert breach_times(ticket.outputs) == [T0 + target]


@pytest.mark.parametrize(("severity", "frequency"), UPDATE_FREQUENCY)
@pytest.mark.parametrize("tier", TIERS)
def test_update_frequency(severity: str, frequency: timedelta, tier: str) -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, severity, tier)
    ticket.send("ticket.responded", responded, {"agent_id": "A-7"})

    ticket.advance(responded + frequency - SEC)
    assert update_keys(ticket.outputs) == []

    decision = ticket.advance(responded + frequency)
    updates = of_type(decision.outputs, "sla.update_due")
    assert len(updates) == 1
    (update,) = updates
    assert update.time == responded + frequency
    assert_data_includes(
        update,
        {
            "ticket_id": "TCK-1",
            "severity": severity,
            "cycle": 1,
            "due_at": responded + frequency,
            "frequency": frequency,
        },
    )


@pytest.mark.parametrize("severity", NO_UPDATES)
@pytest.mark.parametrize("tier", TIERS)
def test_no_update_frequency(severity: str, tier: str) -> None:
    ticket = Subject()
    ticket.open(T0, severity, tier)
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.advance(T0 + 10 * DAY)
    ticket.send("ticket.updated", T0 + 11 * DAY)
    ticket.advance(T0 + 40 * DAY)
    assert of_type(ticket.outputs, "sla.update_due") == []


@pytest.mark.parametrize(
    ("severity", "step", "after", "actions"),
    ESCALATION_MATRIX,
    ids=[_id(sev, "step", n) for sev, n, _, _ in ESCALATION_MATRIX],
)
@pytest.mark.parametrize("tier", TIERS)
def test_escalation_step(
    severity: str, step: int, after: timedelta, actions: list[dict[str, str]], tier: str
) -> None:
    ticket = Subject()
    ticket.open(T0, severity, tier, customer_id="CUST-42")
    if after:
        ticket.advance(T0 + after - SEC)
        assert step not in [s for _, s, _ in escalation_keys(ticket.outputs)]

    ticket.advance(T0 + after)
    matching = [
        o for o in of_type(ticket.outputs, "sla.escalation") if output_data(o)["step"] == step
    ]
    assert len(matching) == 1
    (escalation,) = matching
    assert escalation.time == T0 + after
    assert escalation.subject == "TCK-1"
    assert_data_includes(
        escalation,
        {
            "ticket_id": "TCK-1",
            "customer_id": "CUST-42",
            "severity": severity,
            "support_tier": tier,
            "step": step,
            "after": after,
        },
    )
    assert output_data(escalation)["actions"] == actions


@pytest.mark.parametrize("severity", sorted(LADDER_LENGTH))
def test_whole_ladder_in_order(severity: str) -> None:
    ticket = Subject()
    ticket.open(T0, severity)
    ticket.advance(T0 + 30 * DAY)
    expected = [
        (severity, step, T0 + after) for sev, step, after, _ in ESCALATION_MATRIX if sev == severity
    ]
    assert escalation_keys(ticket.outputs) == expected


@pytest.mark.parametrize("severity", NO_UPDATES)
@pytest.mark.parametrize("tier", TIERS)
def test_no_escalations(severity: str, tier: str) -> None:
    ticket = Subject()
    ticket.open(T0, severity, tier)
    ticket.advance(T0 + 30 * DAY)
    assert of_type(ticket.outputs, "sla.escalation") == []
