"""Errors of the SLA core.

SlaError
├── Rejected     -- an input event the state cannot accept; `reason` is a bounded code
└── PolicyError  -- (processor.sla.policy) the policy is invalid; raised at start-up
"""

from __future__ import annotations


class SlaError(Exception):
    """Base of the core's errors."""


class Rejected(SlaError):
    """The event is well formed but not acceptable now; `reason` is fit for a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
