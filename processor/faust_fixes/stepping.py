"""A coroutine's first step, taken in place: the awaits some fixes wrap most often complete at
once, and then need no task."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


def first_step(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run `coro` up to its first wait: (True, its result) if it completed without one, else
    (False, an awaitable that finishes it, for a task or an `await`). Its exception propagates."""
    try:
        waiting_for = coro.send(None)
    except StopIteration as done:
        return True, done.value
    return False, Resumed(coro, waiting_for)


class Resumed:
    """A coroutine stopped at its first wait (it yielded `waiting_for`), finished by whoever
    awaits this as if they had started it: what they send or throw goes on to the coroutine."""

    __slots__ = ("_coro", "_waiting_for")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_for: Any) -> None:
        self._coro = coro
        self._waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._waiting_for
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, most often: the coroutine sees it
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    return done.value
