"""The report of the generated history, as the renderers' tests and the screenshot use it."""

from __future__ import annotations

import io
from functools import cache

from processor.attainment.compute import of_replay
from processor.attainment.render_data import Document, document
from processor.attainment.render_html import render
from processor.replay import read_events, replay

from .events import EXTENDED
from .generator import HOSTILE, history

CUSTOMERS = ("ACME", "Globex", "Initech", "Umbrella", "Hooli", "Stark")


@cache
def generated_lines(hostile: bool) -> tuple[bytes, ...]:
    customers = (*CUSTOMERS, HOSTILE) if hostile else CUSTOMERS
    return tuple(history(EXTENDED, customers=customers))


@cache
def generated_document(hostile: bool) -> Document:
    errors = io.StringIO()
    result = replay(read_events(generated_lines(hostile), errors), EXTENDED, None, errors)
    assert not errors.getvalue(), errors.getvalue()
    return document(of_replay(result), result.events, result.skipped_after_until)


def generated_report(hostile: bool) -> str:
    return render(generated_document(hostile))
