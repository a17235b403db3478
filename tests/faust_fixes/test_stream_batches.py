"""`faust_fixes.stream_batches` takes each waiting record with Faust's own iteration's steps: the
tests of what it does are `tests/shell/test_worker.py`; these check that Faust still iterates as
the module copies it, so that a release that changes it is looked at again."""

from __future__ import annotations

import inspect
from pathlib import Path

import faust.streams


def test_faust_still_yields_one_record_per_turn_of_the_loop() -> None:
    source = inspect.getsource(faust.streams.Stream._py_aiter)
    assert "await sleep(0)" in source
    assert "chan_quick_get()" in source


def test_faust_still_takes_a_record_with_the_steps_the_module_copies() -> None:
    source = inspect.getsource(faust.streams.Stream._py_aiter)
    for step in (
        # skipped: an earlier generation, or flow stopped; acknowledged nevertheless
        "not self.app.flow_control.is_active()",
        "message.generation_id != self.app.consumer_generation_id",
        "if event is not None and (do_ack or value is skipped_value):",
        # tracked, counted and reported
        "if topic in acking_topics and not message.tracked:",
        "add_unacked(message)",
        "on_message_in(message.tp, message.offset, message)",
        "sensor_state = on_stream_event_in(tp, offset, self, event)",
        "self.events_total += 1",
        # acknowledged after the agent's turn
        "last_stream_to_ack = event.ack()",
        "on_stream_event_out(tp, offset, self, event, sensor_state)",
        "on_message_out(tp, offset, message)",
    ):
        assert step in source, step


def test_faust_iterates_with_its_compiled_iterator_which_drops_skipped_records() -> None:
    """The installed Faust is built with its compiled iterator, the one the module follows: a
    record of an earlier generation or read with flow stopped is returned as skipped before it
    is tracked, and only an event is acknowledged after the agent's turn."""
    assert faust.streams._CStreamIterator is not None
    pyx = (Path(faust.streams.__file__).parent / "_cython" / "streams.pyx").read_text()
    skip = pyx.index("return None, self._skipped_value, stream_state")
    assert pyx.index("message.generation_id != self.app.consumer_generation_id") < skip
    assert skip < pyx.index("self.add_unacked(message)")
    assert "if do_ack and event is not None:" in pyx
    assert "await sleep(0)" in pyx
