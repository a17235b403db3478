"""Policies over time and per customer: effective-dated versions chosen by rules on a ticket's data.

A policy set names policies, each a list of versions in force from an instant on, and rules
that send a ticket to a policy by its customer, support tier, contract or region. A ticket is
governed, for its whole life, by the version in force at its clock start (its `ticket.opened`
time) of the policy its opening data selects; a maintenance by the version in force at its
first announcement of the set's maintenance policy. The chosen version's key
(`name@label`) is stored in the state and named by every output (decisions.md, 45).

A plain policy file is the set of one policy, `default`, of one version, `1`.

Errors:
    PolicyError -- the set or one of its versions is invalid; the message names the file, the
        policy and version, and the field
"""

from __future__ import annotations

import json
import tomllib
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from processor.sla.policy import (
    DEFAULT_POLICY_NAME,
    Policy,
    PolicyError,
    default_document,
    describe,
    load_policy,
    parse_policy,
)
from processor.sla.vocabulary import Tier

DEFAULT: Final = "default"
_NAME: Final = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# Before any version of a policy is in force, its first one governs (history older than a set).
_DAWN: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a named policy, in force from `effective_from` until the next one."""

    key: str  # "name@label", stored in states and named by outputs
    name: str
    label: str
    effective_from: datetime
    policy: Policy
    fingerprint: str  # what a stored next deadline was computed under (codec header)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a ticket's opening tells the selection rules."""

    customer_id: str
    support_tier: Tier
    contract: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """Selects `policy` for a ticket whose data matches every field given (None: any)."""

    policy: str
    customer_id: frozenset[str] | None = None
    support_tier: frozenset[Tier] | None = None
    contract: frozenset[str] | None = None
    region: frozenset[str] | None = None

    def matches(self, facts: Facts) -> bool:
        return (
            _among(facts.customer_id, self.customer_id)
            and _among(facts.support_tier, self.support_tier)
            and _among(facts.contract, self.contract)
            and _among(facts.region, self.region)
        )


def _among(value: object, allowed: frozenset[Any] | None) -> bool:
    return allowed is None or value in allowed


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Named policies with their versions (by `effective_from`), and the rules choosing one."""

    policies: Mapping[str, tuple[Version, ...]]
    rules: tuple[Rule, ...]
    default: str
    maintenance: str
    versions: Mapping[str, Version]  # by key
    fingerprints: frozenset[str]

    def select(self, facts: Facts, at: datetime) -> Version:
        """The version governing a ticket opened at `at` with these facts."""
        return self.in_force(self.choose(facts), at)

    def choose(self, facts: Facts) -> str:
        """The policy of the first rule that matches (none: the default)."""
        return next((rule.policy for rule in self.rules if rule.matches(facts)), self.default)

    def in_force(self, name: str, at: datetime) -> Version:
        versions = self.policies[name]
        starts = [v.effective_from for v in versions]
        return versions[max(bisect_right(starts, at) - 1, 0)]

    def governing(self, key: str, clock_start: datetime, otherwise: Callable[[], str]) -> Version:
        """A stored state's version: its key; a state stored before keys (""), or under a key
        the set no longer has, takes the version in force at its clock start of the policy the
        key names, or if the set has no such policy, of `otherwise()`."""
        version = self.versions.get(key)
        if version is not None:
            return version
        name = key.partition("@")[0]
        return self.in_force(name if name in self.policies else otherwise(), clock_start)

    def all_policies(self) -> tuple[Policy, ...]:
        return tuple(v.policy for v in self.versions.values())


def single(policy: Policy) -> PolicySet:
    """A plain policy as a set: `default@1`, in force from the start, under every rule.

    Its version keeps the policy's own fingerprint, so states stored before sets existed keep
    their stored deadlines."""
    version = Version(f"{DEFAULT}@1", DEFAULT, "1", _DAWN, policy, policy.fingerprint)
    return PolicySet(
        MappingProxyType({DEFAULT: (version,)}),
        (),
        DEFAULT,
        DEFAULT,
        MappingProxyType({version.key: version}),
        frozenset({version.fingerprint}),
    )


# -- the set file's shape ---------------------------------------------------------------------

_FILE = ConfigDict(extra="forbid", frozen=True)
Name = Annotated[str, Field(pattern=_NAME)]


class _VersionFile(BaseModel):
    model_config = _FILE
    label: Name
    effective_from: datetime
    file: str | None = None  # relative to the set's file; absent: the seed's policy
    overrides: dict[str, Any] = {}  # merged over the file's document, table by table

    @model_validator(mode="after")
    def _aware(self) -> _VersionFile:
        if self.effective_from.tzinfo is None:
            raise ValueError("effective_from needs a time zone offset (Z or +hh:mm)")
        return self


class _PolicyEntry(BaseModel):
    model_config = _FILE
    versions: Annotated[tuple[_VersionFile, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct(self) -> _PolicyEntry:
        labels = [v.label for v in self.versions]
        if len(set(labels)) != len(labels):
            raise ValueError("version labels must be distinct")
        starts = [v.effective_from for v in self.versions]
        if len(set(starts)) != len(starts):
            raise ValueError("two versions take effect at the same instant")
        return self


class _RuleFile(BaseModel):
    model_config = _FILE
    policy: Name
    customer_id: Annotated[tuple[str, ...], Field(min_length=1)] | None = None
    support_tier: Annotated[tuple[Tier, ...], Field(min_length=1)] | None = None
    contract: Annotated[tuple[str, ...], Field(min_length=1)] | None = None
    region: Annotated[tuple[str, ...], Field(min_length=1)] | None = None


class _SetFile(BaseModel):
    model_config = _FILE
    default: Name = DEFAULT
    maintenance: Name | None = None
    policies: Annotated[dict[Name, _PolicyEntry], Field(min_length=1)]
    select: tuple[_RuleFile, ...] = ()

    @model_validator(mode="after")
    def _known(self) -> _SetFile:
        for field, name in (("default", self.default), ("maintenance", self.maintenance)):
            if name is not None and name not in self.policies:
                raise ValueError(f"{field} names no policy: {name!r}")
        for i, rule in enumerate(self.select):
            if rule.policy not in self.policies:
                raise ValueError(f"select.{i}.policy names no policy: {rule.policy!r}")
        return self


def is_set(document: Mapping[str, Any]) -> bool:
    """A set has `policies`; a single policy has `response_targets`."""
    return "policies" in document


def parse_set(
    document: Mapping[str, Any], source: str, read: _Reader, seed: Mapping[str, Any]
) -> PolicySet:
    """Validate a policy-set document; `read(file)` loads a version's policy document."""
    try:
        spec = _SetFile.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {describe(exc, 'policy set')}") from None
    policies: dict[str, tuple[Version, ...]] = {}
    for name, entry in spec.policies.items():
        ordered = sorted(entry.versions, key=lambda v: v.effective_from)
        policies[name] = tuple(_version(name, v, source, read, seed) for v in ordered)
    versions = {v.key: v for vs in policies.values() for v in vs}
    return PolicySet(
        MappingProxyType(policies),
        tuple(_rule(r) for r in spec.select),
        spec.default,
        spec.maintenance or spec.default,
        MappingProxyType(versions),
        frozenset(v.fingerprint for v in versions.values()),
    )


class _Reader:
    """Reads a version's policy document, relative to the set's directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, file: str, where: str) -> dict[str, Any]:
        return _read_document(self.root / file, where)


def _version(
    name: str, spec: _VersionFile, source: str, read: _Reader, seed: Mapping[str, Any]
) -> Version:
    where = f"{source}: policies.{name} version {spec.label}"
    base = dict(seed) if spec.file is None else read(spec.file, where)
    document = _merged(base, spec.overrides)
    label = spec.file or DEFAULT_POLICY_NAME
    root = read.root if spec.file is None else (read.root / spec.file).parent
    policy = parse_policy(document, f"{where} ({label})", root)
    key = f"{name}@{spec.label}"
    digest = blake2b(f"{key}\x1f{policy.fingerprint}".encode(), digest_size=6).hexdigest()
    effective = spec.effective_from.astimezone(UTC)
    return Version(key, name, spec.label, effective, policy, digest)


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`: tables merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _merged(below, value)
        else:
            merged[key] = value
    return merged


def _rule(spec: _RuleFile) -> Rule:
    def group(values: Sequence[Any] | None) -> frozenset[Any] | None:
        return None if values is None else frozenset(values)

    return Rule(
        spec.policy,
        group(spec.customer_id),
        group(spec.support_tier),
        group(spec.contract),
        group(spec.region),
    )


def _read_document(path: Path, where: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
        document = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        named = "" if where == str(path) else f" {path}"
        raise PolicyError(f"{where}: cannot read the policy{named}: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{where}: {path} must be a table/object at the top level")
    return document


def load_policies(path: Path | None = None) -> PolicySet:
    """A policy set, or a single policy (TOML or JSON) as a set; None: the seed's policy."""
    if path is None:
        return single(load_policy())
    document = _read_document(path, str(path))
    if not is_set(document):
        return single(parse_policy(document, str(path), path.parent))
    return parse_set(document, str(path), _Reader(path.parent), default_document())
