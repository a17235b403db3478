"""The agent's loop (`worker.handle_each`): a record that fails is logged and the next goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from processor.worker import handle_each


class _Stream:
    def __init__(self, failing: set[int]) -> None:
        self.failing = failing
        self.handled: list[int] = []

    async def handle(self, event: Any) -> None:
        offset = event.message.offset
        if offset in self.failing:
            raise ValueError("payload must not reach the log")
        self.handled.append(offset)


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int


@dataclass
class _Event:
    message: _Message


async def _events(n: int) -> AsyncIterator[Any]:
    for offset in range(n):
        yield _Event(_Message("tickets.events", 2, offset))


async def test_a_failing_record_is_logged_by_id_and_the_next_one_is_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = _Stream(failing={1})
    await handle_each(stream, _events(3))
    assert stream.handled == [0, 2]
    failed = [r for r in caplog.records if r.getMessage() == "record failed"]
    where = [(vars(r)["topic"], vars(r)["partition"], vars(r)["offset"]) for r in failed]
    assert where == [("tickets.events", 2, 1)]
