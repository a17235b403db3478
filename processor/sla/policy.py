"""The SLA policy: the seed's tables as frozen values, validated once when loaded.

Errors:
    PolicyError -- the policy file is unreadable or invalid; the message names the field
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from hashlib import blake2b
from importlib import resources
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from processor.sla.business_hours import ALWAYS_ON, BusinessCalendar, WorkingClock, parse_weekly
from processor.sla.exceptions import SlaError
from processor.sla.ical import IcalError, holidays_from_ical
from processor.sla.vocabulary import Severity, Tier


class PolicyError(SlaError, ValueError):
    """The policy cannot be used; the message says which field and why."""


class Role(StrEnum):
    TIER1 = "tier1"
    TIER2 = "tier2"
    TIER3 = "tier3"
    SUPPORT_MANAGER = "support_manager"
    SUPPORT_DIRECTOR = "support_director"
    SUPPORT_VP = "support_vp"


class Action(StrEnum):
    ROUTE = "route"
    ENGAGE = "engage"
    NOTIFY = "notify"


@dataclass(frozen=True, slots=True)
class Assignment:
    role: Role
    action: Action


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    after: timedelta
    actions: tuple[Assignment, ...]


@dataclass(frozen=True, slots=True)
class Classification:
    low_problem_types: frozenset[str]
    urgent_problem_types: frozenset[str]


@dataclass(frozen=True, slots=True)
class MaintenanceRules:
    minimum_notice: timedelta
    reminder_offsets: tuple[timedelta, ...]
    exempt_kinds: frozenset[str]


class Target(StrEnum):
    """The deadlines a warning may precede."""

    INITIAL_RESPONSE = "initial_response"
    UPDATE_DUE = "update_due"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class WarningRule:
    """Warnings before a severity's deadlines: at a share of the target elapsed (`percents`)
    and at lead times before the deadline (`leads`), in the clock's working time."""

    percents: tuple[int, ...]
    leads: tuple[timedelta, ...]
    targets: frozenset[Target]


class MissedAcknowledgement(StrEnum):
    REPEAT = "repeat"  # repeat the step's notification, up to `repeats` times
    NEXT_STEP = "next_step"  # move to the ladder's next step at once


@dataclass(frozen=True, slots=True)
class AcknowledgementRule:
    """A step's actions must be acknowledged `within` its emission (on the severity's clock)."""

    within: timedelta
    on_missed: MissedAcknowledgement
    repeats: int
    steps: frozenset[int] | None  # None: every step of the ladder


@dataclass(frozen=True, slots=True)
class SurveyRule:
    """`ticket.survey_due` at `delay` after a resolve, for tickets of these severities."""

    delay: timedelta
    severities: frozenset[Severity]


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the engine needs to decide; lookups are precomputed mappings."""

    response_targets: Mapping[tuple[Severity, Tier], timedelta]
    update_frequency: Mapping[Severity, timedelta]
    pausing_statuses: frozenset[str]
    ladders: Mapping[Severity, tuple[Step, ...]]
    clocks: Mapping[Severity, WorkingClock]
    classification: Classification
    maintenance: MaintenanceRules
    closed_ticket_retention: timedelta
    ended_maintenance_retention: timedelta
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    # Optional rules beyond the seed's tables (absent from a policy file: off).
    warnings: Mapping[Severity, WarningRule] = field(default_factory=dict)
    acknowledgement: Mapping[Severity, AcknowledgementRule] = field(default_factory=dict)
    survey: SurveyRule | None = None
    retractions: bool = False
    # Names the policy's content. States are stored with their next deadline and this tag, so
    # a restart under another policy recomputes deadlines instead of trusting stored ones.
    fingerprint: str = ""

    def clock(self, severity: Severity) -> WorkingClock:
        return self.clocks[severity]  # every severity has one: 24x7 unless a calendar is set


# -- the file's shape, validated by pydantic ------------------------------------------------

_FILE = ConfigDict(extra="forbid", frozen=True)


def _non_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be positive")
    return value


Duration = Annotated[timedelta, AfterValidator(_non_negative)]
PositiveDuration = Annotated[timedelta, AfterValidator(_positive)]


def normalise_name(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_").replace("/", "_")


class _AssignmentFile(BaseModel):
    model_config = _FILE
    role: Role
    action: Action


class _StepFile(BaseModel):
    model_config = _FILE
    step: Annotated[int, Field(ge=1)]
    after: Duration
    actions: Annotated[tuple[_AssignmentFile, ...], Field(min_length=1)]


def _ladder_is_ordered(steps: tuple[_StepFile, ...]) -> tuple[_StepFile, ...]:
    if [s.step for s in steps] != list(range(1, len(steps) + 1)):
        raise ValueError("steps must be numbered 1, 2, 3, ... in order")
    if any(a.after > b.after for a, b in pairwise(steps)):
        raise ValueError("a step's `after` must not be earlier than the previous step's")
    return steps


class _UpdatesFile(BaseModel):
    model_config = _FILE
    pausing_statuses: tuple[str, ...] = ("pending_customer",)


class _ClassificationFile(BaseModel):
    model_config = _FILE
    low_problem_types: tuple[str, ...]
    urgent_problem_types: tuple[str, ...]


class _MaintenanceFile(BaseModel):
    model_config = _FILE
    minimum_notice: Duration = timedelta(days=5)
    reminder_offsets: tuple[PositiveDuration, ...] = (timedelta(hours=24),)
    exempt_kinds: tuple[str, ...] = ("emergency",)


class _RetentionFile(BaseModel):
    model_config = _FILE
    closed_tickets: Duration = timedelta(days=7)
    ended_maintenance: Duration = timedelta(days=7)


class _WarningFile(BaseModel):
    model_config = _FILE
    percent: tuple[Annotated[int, Field(ge=1, le=99)], ...] = ()
    before: tuple[PositiveDuration, ...] = ()
    targets: Annotated[tuple[Target, ...], Field(min_length=1)] = tuple(Target)

    @model_validator(mode="after")
    def _some_point(self) -> _WarningFile:
        if not self.percent and not self.before:
            raise ValueError("a warning needs `percent` or `before` (or both)")
        return self


class _AcknowledgementFile(BaseModel):
    model_config = _FILE
    within: PositiveDuration
    on_missed: MissedAcknowledgement = MissedAcknowledgement.REPEAT
    repeats: Annotated[int, Field(ge=0, le=9)] = 0
    steps: tuple[Annotated[int, Field(ge=1)], ...] | None = None


class _SurveyFile(BaseModel):
    model_config = _FILE
    delay: Duration
    severities: Annotated[tuple[Severity, ...], Field(min_length=1)] = tuple(Severity)


class _RetractionsFile(BaseModel):
    model_config = _FILE
    enabled: bool = False


class _CalendarFile(BaseModel):
    model_config = _FILE
    timezone: str
    weekly: dict[str, tuple[str, ...]]
    holidays: tuple[date, ...] = ()
    # iCalendar files (RFC 5545), relative to the policy file: their events' dates are holidays.
    holidays_ical: tuple[str, ...] = ()

    def build(self, root: Path | None) -> BusinessCalendar:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        holidays = frozenset(self.holidays).union(*(_ical(root, f) for f in self.holidays_ical))
        return BusinessCalendar(zone, parse_weekly(self.weekly), holidays)


# Dates an iCalendar file's yearly rules are expanded over.
ICAL_RANGE: Final = (date(1970, 1, 1), date(2100, 12, 31))


def _ical(root: Path | None, name: str) -> frozenset[date]:
    path = Path(name) if root is None else root / name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"holidays_ical: cannot read {path}: {exc}") from None
    start, end = ICAL_RANGE
    try:
        return holidays_from_ical(text, source=str(path), start=start, end=end)
    except IcalError as exc:
        raise ValueError(f"holidays_ical: {exc}") from None


class _PolicyFile(BaseModel):
    model_config = _FILE
    response_targets: dict[Severity, dict[Tier, PositiveDuration]]
    update_frequency: dict[Severity, PositiveDuration] = {}
    updates: _UpdatesFile = _UpdatesFile()
    escalation: dict[
        Severity, Annotated[tuple[_StepFile, ...], AfterValidator(_ladder_is_ordered)]
    ] = {}
    classification: _ClassificationFile
    maintenance: _MaintenanceFile = _MaintenanceFile()
    retention: _RetentionFile = _RetentionFile()
    calendars: dict[str, _CalendarFile] = {}
    clocks: dict[Severity, str] = {}
    warnings: dict[Severity, _WarningFile] = {}
    acknowledgement: dict[Severity, _AcknowledgementFile] = {}
    survey: _SurveyFile | None = None
    retractions: _RetractionsFile = _RetractionsFile()

    @model_validator(mode="after")
    def _complete(self) -> _PolicyFile:
        for severity in Severity:
            missing = set(Tier) - set(self.response_targets.get(severity, {}))
            if missing:
                tiers = ", ".join(sorted(missing))
                raise ValueError(f"response_targets.{severity} lacks tiers: {tiers}")
        for severity, name in self.clocks.items():
            if name not in self.calendars:
                raise ValueError(f"clocks.{severity} names no calendar: {name!r}")
        for severity, rule in self.acknowledgement.items():
            numbers = {s.step for s in self.escalation.get(severity, ())}
            unknown = sorted(set(rule.steps or ()) - numbers)
            if unknown:
                raise ValueError(f"acknowledgement.{severity}.steps: no such step {unknown}")
        if self.survey is not None and self.survey.delay > self.retention.closed_tickets:
            # A closed ticket is forgotten after its retention: a later survey would be lost.
            raise ValueError("survey.delay must not exceed retention.closed_tickets")
        return self


def _compile(spec: _PolicyFile, calendars: Mapping[str, BusinessCalendar]) -> Policy:
    ladders = {
        severity: tuple(
            Step(s.step, s.after, tuple(Assignment(a.role, a.action) for a in s.actions))
            for s in steps
        )
        for severity, steps in spec.escalation.items()
    }
    return Policy(
        response_targets=MappingProxyType(
            {
                (sev, tier): d
                for sev, row in spec.response_targets.items()
                for tier, d in row.items()
            }
        ),
        update_frequency=MappingProxyType(dict(spec.update_frequency)),
        pausing_statuses=frozenset(spec.updates.pausing_statuses),
        ladders=MappingProxyType(ladders),
        clocks=MappingProxyType(
            {
                sev: calendars[spec.clocks[sev]] if sev in spec.clocks else ALWAYS_ON
                for sev in Severity
            }
        ),
        classification=Classification(
            frozenset(map(normalise_name, spec.classification.low_problem_types)),
            frozenset(map(normalise_name, spec.classification.urgent_problem_types)),
        ),
        maintenance=MaintenanceRules(
            spec.maintenance.minimum_notice,
            tuple(sorted(set(spec.maintenance.reminder_offsets), reverse=True)),
            frozenset(spec.maintenance.exempt_kinds),
        ),
        closed_ticket_retention=spec.retention.closed_tickets,
        ended_maintenance_retention=spec.retention.ended_maintenance,
        calendars=MappingProxyType(dict(calendars)),
        warnings=MappingProxyType(
            {
                sev: WarningRule(
                    tuple(sorted(set(w.percent))),
                    tuple(sorted(set(w.before), reverse=True)),
                    frozenset(w.targets),
                )
                for sev, w in spec.warnings.items()
            }
        ),
        acknowledgement=MappingProxyType(
            {
                sev: AcknowledgementRule(
                    a.within,
                    a.on_missed,
                    a.repeats,
                    None if a.steps is None else frozenset(a.steps),
                )
                for sev, a in spec.acknowledgement.items()
            }
        ),
        survey=(
            None
            if spec.survey is None
            else SurveyRule(spec.survey.delay, frozenset(spec.survey.severities))
        ),
        retractions=spec.retractions.enabled,
        fingerprint=_fingerprint(spec, calendars),
    )


# Bump when the engine computes deadlines differently (ticket, maintenance, business hours):
# states stored with a next deadline are then recomputed on the next take-over.
DEADLINE_RULES: Final = 1


def _fingerprint(spec: _PolicyFile, calendars: Mapping[str, BusinessCalendar]) -> str:
    """A digest of what a stored next deadline depends on besides the state: the validated
    document, the holidays its iCalendar files name, the engine's deadline rules and the
    time-zone database. Equal inputs agree across processes."""
    identity: dict[str, Any] = {
        "policy": spec.model_dump(mode="json"),
        "rules": DEADLINE_RULES,
        "tzdata": _tzdata_version(),
    }
    if any(c.holidays_ical for c in spec.calendars.values()):
        identity["holidays"] = {
            name: sorted(day.isoformat() for day in calendars[name].holidays)
            for name in sorted(spec.calendars)
        }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return blake2b(canonical.encode(), digest_size=6).hexdigest()


def _tzdata_version() -> str:
    """The version of the IANA database zoneinfo reads (the system's, else the tzdata package)."""
    for root in zoneinfo.TZPATH:
        try:
            with open(Path(root) / "tzdata.zi", encoding="ascii") as header:
                return header.readline().strip()  # "# version 2025b"
        except OSError:
            continue
    try:
        return importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def describe(exc: ValidationError, whole: str = "policy") -> str:
    """A validation error as `field.path: message; ...` (`whole` when it is about no field)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or whole
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def parse_policy(
    document: Mapping[str, Any], source: str = "policy", root: Path | None = None
) -> Policy:
    """Validate a policy document (already decoded) and compile it into frozen values; files it
    names (holidays_ical) are relative to `root`."""
    try:
        spec = _PolicyFile.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {describe(exc)}") from None
    calendars: dict[str, BusinessCalendar] = {}
    for name, calendar in spec.calendars.items():
        try:
            calendars[name] = calendar.build(root)
        except ValueError as exc:
            raise PolicyError(f"{source}: calendars.{name}: {exc}") from None
    return _compile(spec, calendars)


DEFAULT_POLICY_NAME: Final = "default_policy.toml"


def default_document() -> dict[str, Any]:
    """The seed's policy as a document (the packaged default policy file, decoded)."""
    raw = resources.files("processor.sla").joinpath(DEFAULT_POLICY_NAME).read_bytes()
    return tomllib.loads(raw.decode())


def load_policy(path: Path | None = None) -> Policy:
    """Load a TOML or JSON policy file, or the packaged default policy when `path` is None."""
    if path is None:
        return parse_policy(default_document(), DEFAULT_POLICY_NAME)
    try:
        raw = path.read_bytes()
        document = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{path}: the policy must be a table/object at the top level")
    return parse_policy(document, str(path), path.parent)
