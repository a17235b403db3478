"""Webhook mappings: a help desk's webhook payload as our input events, driven by a data file.

A mapping (TOML, one per source: `processor/ingest/mappings/<source>.toml`, or a directory of
one's own) names where the payload keeps the ticket id and the event time, and lists rules: each
rule that matches the payload yields one event (or one per item of a list, `each`), with an id
made from the source's own ids, so that a webhook the help desk retries is a repeat of the same
events, never a second one. The grammar is in docs/ingest.md.

Errors:
    MappingError(message)            -- a mapping file is invalid; the message names file and field
    Unmapped(reason, message)        -- a payload does not map; the message names paths, not values
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from processor.ingest import IngestConfigError
from schemas.cloudevents import EARLIEST, LATEST, MAINTENANCE_TYPES, TICKET_TYPES

BUILT_IN: Final = ("zendesk", "jira", "servicenow")
NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
# A template's tokens: an escaped brace, or a path in braces.
_TOKEN: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_$@-]+")
REASONS: Final = frozenset({"unmapped_event", "missing_field", "unmapped_value", "bad_time"})


class MappingError(IngestConfigError):
    """A mapping file that cannot be used; the message names the file and the field."""


class Unmapped(ValueError):
    """The payload does not map to events; `reason` is bounded, the message names no value."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Scalar = str | int | float | bool
_STRICT = ConfigDict(extra="forbid", frozen=True)


def _path_ok(path: str) -> str:
    if not all(_SEGMENT.fullmatch(part) for part in path.split(".")):
        raise ValueError(f"{path!r} is not a dotted path (names and list indexes)")
    return path


def _template_ok(text: str) -> str:
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            _path_ok(match.group(1))
    return text


class Value(BaseModel):
    """Where a value is found, and how it is turned into ours."""

    model_config = _STRICT

    path: str | tuple[str, ...]
    map: dict[str, Scalar] | None = None
    default: Scalar | None = None
    format: str | None = None
    optional: bool = False
    time: str | None = None  # "iso", "epoch_ms", "epoch_s" or a strptime format (then UTC)

    @field_validator("path")
    @classmethod
    def _paths(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for path in (value,) if isinstance(value, str) else value:
            _path_ok(path)
        return value


Spec = Annotated[str, Field(min_length=1)] | Value | bool | int


class Rule(BaseModel):
    model_config = _STRICT

    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
    when: dict[str, Any]
    each: str | None = None
    type: str
    id: str
    time: Spec | None = None
    data: dict[str, Spec] = {}

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in TICKET_TYPES | MAINTENANCE_TYPES:
            raise ValueError(f"{value!r} is not an input event type")
        return value

    @field_validator("id")
    @classmethod
    def _id_template(cls, value: str) -> str:
        return _template_ok(value)


class Ignore(BaseModel):
    model_config = _STRICT

    when: dict[str, Any]
    why: str


class Mapping(BaseModel):
    model_config = _STRICT

    source: Annotated[str, Field(min_length=1, max_length=512)]
    # How the help desk signs a webhook with a shared secret (SLA_INGEST_WEBHOOK_SECRETS_FILE):
    # "hub-sha256" (X-Hub-Signature: sha256=<hex HMAC of the body>, Jira's) or "zendesk"
    # (X-Zendesk-Webhook-Signature: base64 HMAC of the signature timestamp and the body).
    signature: Literal["hub-sha256", "zendesk"] | None = None
    subject: Spec
    time: Spec
    event: tuple[Rule, ...]
    ignore: tuple[Ignore, ...] = ()


def load(name: str, directory: Path | None = None) -> Mapping:
    """The mapping of source `name`: `directory/<name>.toml` if there is one, else the built-in."""
    if not NAME.fullmatch(name):
        raise MappingError(f"{name!r} is not a source name (a-z, 0-9, '-')")
    file = directory / f"{name}.toml" if directory is not None else None
    if file is not None and file.is_file():
        where, text = str(file), file.read_text()
    elif name in BUILT_IN:
        where = f"processor/ingest/mappings/{name}.toml"
        text = resources.files("processor.ingest").joinpath(f"mappings/{name}.toml").read_text()
    else:
        raise MappingError(f"no mapping for source {name!r}")
    try:
        mapping = Mapping.model_validate(tomllib.loads(text))
        _check_conditions(mapping)
        return mapping
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "mapping"
        raise MappingError(f"{where}: {field}: {first['msg']}") from None
    except _BadCondition as exc:
        raise MappingError(f"{where}: {exc}") from None


def load_all(directory: Path | None = None) -> dict[str, Mapping]:
    """The built-in mappings and every `<name>.toml` of `directory` (which replace or add)."""
    names = set(BUILT_IN)
    if directory is not None:
        names |= {file.stem for file in directory.glob("*.toml")}
    return {name: load(name, directory) for name in sorted(names)}


def events(mapping: Mapping, payload: Any) -> list[bytes]:
    """The structured-mode CloudEvents (JSON bytes, not yet validated) the payload maps to, in
    rule order; [] when an `ignore` entry matches; Unmapped otherwise."""
    if not isinstance(payload, dict):
        raise Unmapped("unmapped_event", "the payload is not a JSON object")
    found = []
    for rule in mapping.event:
        for scope in _scopes(rule, payload):
            if _matches(rule.when, scope):
                found.append(_event(mapping, rule, scope))
    if found:
        return found
    if any(_matches(entry.when, payload) for entry in mapping.ignore):
        return []
    raise Unmapped("unmapped_event", "no rule of the mapping matches this payload")


def _scopes(rule: Rule, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if rule.each is None:
        yield payload
        return
    items = _get(payload, rule.each)
    if isinstance(items, list):
        for item in items:
            yield {**payload, "item": item}


def _event(mapping: Mapping, rule: Rule, scope: dict[str, Any]) -> bytes:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": _render(rule.id, scope),
        "source": mapping.source,
        "type": rule.type,
        "time": _time(rule.time if rule.time is not None else mapping.time, scope),
        "subject": _text(_value(mapping.subject, scope, "subject")),
    }
    data = {}
    for name, spec in rule.data.items():
        value = _value(spec, scope, f"data.{name}")
        if value is not None:
            data[name] = value
    if data:
        event["data"] = data
    return orjson.dumps(event)


_ABSENT: Final = object()


def _get(scope: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(scope, dict):
            scope = scope.get(part, _ABSENT)
        elif isinstance(scope, list) and part.isdigit() and int(part) < len(scope):
            scope = scope[int(part)]
        else:
            return _ABSENT
        if scope is _ABSENT:
            return _ABSENT
    return scope


def _present(value: Any) -> bool:
    return value is not _ABSENT and value is not None and value != "" and value != []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render(template: str, scope: dict[str, Any]) -> str:
    """One pass over the template: `{{` and `}}` are braces, `{path}` the value there (a value
    is never read as template)."""

    def token(match: re.Match[str]) -> str:
        path = match.group(1)
        if path is None:
            return match.group(0)[0]
        value = _get(scope, path)
        if not _present(value) or isinstance(value, dict | list):
            raise Unmapped("missing_field", f"the payload has no value at {path}")
        return _text(value)

    return _TOKEN.sub(token, template)


def _value(spec: Spec, scope: dict[str, Any], field: str) -> Any:
    if isinstance(spec, bool | int):
        return spec
    if isinstance(spec, str):
        return _render(spec, scope)
    paths = (spec.path,) if isinstance(spec.path, str) else spec.path
    found = next((v for v in (_get(scope, p) for p in paths) if _present(v)), _ABSENT)
    value: Any = found
    if found is not _ABSENT and spec.map is not None:
        value = _mapped(spec.map, found)
    if value is _ABSENT:
        if spec.default is not None:
            value = spec.default
        elif spec.optional:
            return None
        elif found is _ABSENT:
            raise Unmapped("missing_field", f"{field}: the payload has no value at "
                           f"{' or '.join(paths)}")  # fmt: skip
        else:
            raise Unmapped("unmapped_value", f"{field}: the value at {' or '.join(paths)} is not "
                           "one the mapping names")  # fmt: skip
    if spec.time is not None:
        value = _instant(value, spec.time, field)
    if spec.format is not None:
        value = spec.format.replace("{}", _text(value))
    return value


def _mapped(table: dict[str, Scalar], found: Any) -> Any:
    """The table's value for `found` (case-insensitive); for a list, for its first item named."""
    lowered = {key.lower(): value for key, value in table.items()}
    for item in found if isinstance(found, list) else [found]:
        if isinstance(item, str | int | float | bool) and _text(item).lower() in lowered:
            return lowered[_text(item).lower()]
    return _ABSENT


def _time(spec: Spec, scope: dict[str, Any]) -> str:
    if isinstance(spec, Value):
        return _text(_value(spec, scope, "time"))
    return _instant(_value(spec, scope, "time"), "iso", "time")


def _instant(value: Any, kind: str, field: str) -> str:
    try:
        if kind in ("epoch_ms", "epoch_s"):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError("not a number")
            moment = datetime.fromtimestamp(float(value) / (1000 if kind == "epoch_ms" else 1), UTC)
        elif kind == "iso":
            moment = datetime.fromisoformat(_text(value).replace("Z", "+00:00"))
            if moment.tzinfo is None:  # as the stream's parser: an instant names its offset
                raise ValueError("no offset")
        else:
            moment = datetime.strptime(_text(value), kind)  # noqa: DTZ007 (UTC below, unless %z)
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        if not EARLIEST <= moment <= LATEST:
            raise ValueError("out of range")
    except (ValueError, TypeError, OverflowError, OSError):
        raise Unmapped("bad_time", f"{field}: not an instant of the form {kind} "
                       "(with an offset, 1970 to 9000)") from None  # fmt: skip
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _matches(when: dict[str, Any], scope: dict[str, Any]) -> bool:
    return all(_holds(_get(scope, path), test, scope) for path, test in when.items())


def _holds(value: Any, test: Any, scope: dict[str, Any]) -> bool:
    if isinstance(test, dict):
        return all(_operator(op, value, operand, scope) for op, operand in test.items())
    if isinstance(test, list):
        return any(_equal(value, option) for option in test)
    return _equal(value, test)


def _operator(op: str, value: Any, operand: Any, scope: dict[str, Any]) -> bool:
    if op == "present":
        return _present(value) is bool(operand)
    if op == "not":
        return not _holds(value, operand, scope)
    if op == "same_as":
        return _present(value) and _equal(value, _get(scope, operand))
    if op == "prefix":
        return isinstance(value, str) and value.lower().startswith(str(operand).lower())
    raise AssertionError(op)  # the loader refused it


def _equal(value: Any, expected: Any) -> bool:
    """Equal as JSON values, strings without regard to case, numbers to their text; a list is
    equal when one of its items is."""
    if isinstance(value, list):
        return any(_equal(item, expected) for item in value)
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, str) and isinstance(value, str | int | float):
        return _text(value).lower() == expected.lower()
    return bool(value == expected)


_OPERATORS: Final = frozenset({"present", "not", "same_as", "prefix"})


class _BadCondition(ValueError):
    pass


def _check_conditions(mapping: Mapping) -> None:
    """Every `when` names dotted paths, and only known operators with operands of their kind,
    at any depth (a table is operators, a list options)."""
    rules = [(f"event.{n}", r.when) for n, r in enumerate(mapping.event)]
    ignores = [(f"ignore.{n}", i.when) for n, i in enumerate(mapping.ignore)]
    for where, when in rules + ignores:
        for path, test in when.items():
            try:
                _path_ok(path)
                _check_test(test)
            except ValueError as exc:
                raise _BadCondition(f"{where}.when.{path}: {exc}") from None


def _check_test(test: Any) -> None:
    if isinstance(test, list):
        if any(isinstance(option, dict | list) for option in test):
            raise ValueError("the options of a list are values")
        return
    for op, operand in test.items() if isinstance(test, dict) else ():
        if op not in _OPERATORS:
            raise ValueError(f"unknown operator {op!r} (one of {', '.join(sorted(_OPERATORS))})")
        if op == "not":
            _check_test(operand)
        elif op == "present" and not isinstance(operand, bool):
            raise ValueError("present takes true or false")
        elif op in ("same_as", "prefix") and not isinstance(operand, str):
            raise ValueError(f"{op} takes a string")
        elif op == "same_as":
            _path_ok(operand)
