"""Cheap copies of the engine's frozen state values (the per-event hot path)."""

from __future__ import annotations

from typing import Any, TypeVar

V = TypeVar("V")


def evolve(value: V, **changes: Any) -> V:
    """`dataclasses.replace` without re-running `__init__`: a copy of the instance dict.

    Measured on a 21-field frozen dataclass: 0.8 us against 5.4 us for `replace` on a slots
    class, and `replace` was half the engine's time. States therefore keep an instance dict
    (no `slots=True`); they stay frozen, since nothing else writes to them.
    """
    current = vars(value)
    for name in changes:
        if name not in current:
            raise TypeError(f"{type(value).__name__} has no field {name!r}")
    new = object.__new__(type(value))
    namespace = vars(new)
    namespace.update(current)
    namespace.update(changes)
    return new
