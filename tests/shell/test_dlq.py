"""What `sla-processor dlq` selects and plans, on dead letters as data."""

from __future__ import annotations

from datetime import UTC, datetime

from processor.dlq import MARKER, DeadLetter, counts, plan, selected


def letter(offset: int, reason: str, *, origin: int | None = None, ms: int = 0,
           extra: tuple[tuple[str, bytes], ...] = ()) -> DeadLetter:  # fmt: skip
    headers: tuple[tuple[str, bytes], ...] = (("x-upstream", b"crm"), *extra,
                                              ("sla-error-reason", reason.encode()))  # fmt: skip
    if origin is not None:
        headers += (("sla-origin-topic", b"tickets"), ("sla-origin-partition", b"0"),
                    ("sla-origin-offset", str(origin).encode()))  # fmt: skip
    return DeadLetter(0, offset, ms, b"T-1", b"{}", headers)


def test_selection_by_reason_and_instant() -> None:
    letters = [letter(0, "a", ms=1_000), letter(1, "b", ms=2_000), letter(2, "a", ms=3_000)]
    assert [d.offset for d in selected(letters, "a", None)] == [0, 2]
    since = datetime.fromtimestamp(2, UTC)
    assert [d.offset for d in selected(letters, None, since)] == [1, 2]
    assert counts(letters) == {"a": 2, "b": 1}


def test_a_plan_sends_each_origin_once_and_never_a_cut_record() -> None:
    letters = [
        letter(0, "unknown_ticket", origin=10),
        letter(1, "unknown_ticket", origin=11),  # redriven by an earlier run
        letter(2, "unknown_ticket", origin=10),  # the same origin twice: sent once
        letter(3, "too_large", origin=12, extra=(("sla-truncated", b"value"),)),
        letter(4, "malformed_json"),  # no origin headers: nowhere to send it
    ]
    made = plan(letters, markers={"tickets/0/11"})
    assert [d.offset for d in made.send] == [0]
    assert [d.offset for d in made.done_before] == [1, 2]
    assert [d.offset for d in made.truncated] == [3]
    assert [d.offset for d in made.no_origin] == [4]


def test_a_redriven_record_keeps_its_own_headers_only() -> None:
    redriven_before = letter(0, "x", origin=5, extra=((MARKER, b"tickets/0/1"),))
    assert redriven_before.upstream() == [("x-upstream", b"crm")]
    assert redriven_before.origin == "tickets/0/5"
    assert "value" not in redriven_before.summary()
