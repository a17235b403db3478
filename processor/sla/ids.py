"""Remembering which input event ids a subject has seen, in a small bounded form."""

from __future__ import annotations

from hashlib import blake2b
from typing import Final

# The most recent ids are kept; an older repeat is judged by its time like any late event.
MAX_REMEMBERED: Final = 64


def digest(event_id: str) -> int:
    """A stable 64-bit digest (Python's own hash is salted per process, so it cannot persist)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big")


def remember(remembered: tuple[int, ...], event_digest: int) -> tuple[int, ...]:
    return (*remembered[-(MAX_REMEMBERED - 1) :], event_digest)
