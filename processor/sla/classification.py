"""Severity from customer impact and problem type, for tickets opened without one (the seed's rules)."""

from __future__ import annotations

from processor.sla.policy import Classification, normalise_name
from processor.sla.vocabulary import Impact, Severity
from schemas.cloudevents import OpenedData


def classify(data: OpenedData, rules: Classification) -> Severity | None:
    """The severity the seed's definitions give, or None when impact and problem type say too little.

    A missing `workaround_available` counts as "no workaround": the safer, faster clock.
    """
    problem = normalise_name(data.problem_type) if data.problem_type else None
    if data.impact is Impact.NONE or problem in rules.low_problem_types:
        return Severity.LOW
    if data.impact is None:
        return None
    if data.workaround_available or data.impact is Impact.MINOR:
        return Severity.NORMAL
    if data.impact is Impact.SERVICE_DOWN and problem in rules.urgent_problem_types:
        return Severity.URGENT
    return Severity.HIGH
