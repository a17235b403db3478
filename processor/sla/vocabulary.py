"""The SLA's vocabulary: severities, support tiers and business impact, as the seed names them.

The wire layer (`schemas/`) validates inputs against these; the core owns them.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Tier(StrEnum):
    PREMIUM = "premium"
    SELECT = "select"
    BASIC = "basic"


class Impact(StrEnum):
    SERVICE_DOWN = "service_down"
    PARTIAL = "partial"
    MINOR = "minor"
    NONE = "none"
