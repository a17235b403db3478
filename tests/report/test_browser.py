"""The HTML report in a real browser (headless Chromium over the DevTools protocol): it loads
without errors or fetches, every chart is drawn, a hostile id runs nothing, the screenshot is a
picture. In CI (CI=true) a missing Chromium fails the run; elsewhere these tests skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from processor.attainment.compute import compute
from processor.attainment.render_data import document
from processor.attainment.render_html import render

from .browser import CHROMIUM, chromium, load, png_colours, png_size, screenshot
from .render_fixtures import generated_report


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    if CHROMIUM is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing (make tools installs it)", pytrace=False)
    pytest.skip("chromium is not installed (make tools installs it; with CI=true this fails)")


WIDTH, HEIGHT = 1400, 3000


async def test_the_report_of_a_generated_history_draws_every_chart(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(generated_report(hostile=True))
    async with chromium(WIDTH, HEIGHT) as tools:
        page = await load(tools, html.as_uri())
        picture = await screenshot(tools)
        decoded = await png_colours(tools, picture)
    assert page.problems == []  # no exception, console error, or blocked fetch
    assert page.dialogs == []  # the hostile customer id ran nothing
    assert "</script><script>alert(1)</script>" in page.text  # shown as text, in its table
    assert len(page.canvases) == 7
    for canvas in page.canvases:
        assert canvas["charted"], canvas
        assert canvas["width"] > 300, canvas
        assert canvas["height"] > 200, canvas
        # Axes, grid, labels and bars: a share of the pixels painted, in several colours.
        assert canvas["painted"] > canvas["width"] * canvas["height"] // 50, canvas
        assert canvas["colours"] >= 4, canvas
    assert png_size(picture) == (WIDTH, HEIGHT)
    assert decoded["width"] == WIDTH
    assert decoded["colours"] > 20


async def test_an_empty_report_loads_cleanly(tmp_path: Path) -> None:
    html = tmp_path / "empty.html"
    html.write_text(render(document(compute({}, [], None))))
    async with chromium(WIDTH, 1200) as tools:
        page = await load(tools, html.as_uri())
    assert page.problems == []
    assert page.canvases == []
    assert "No tickets in the input." in page.text


async def test_the_checks_see_a_broken_page(tmp_path: Path) -> None:
    """The harness itself: a script error, a fetch the policy blocks and a blank canvas."""
    report = generated_report(hostile=False)
    broken = report.replace("<script>\n//", "<script>\nundefinedFunction();\n//", 1)
    broken = broken.replace(
        "</body>", '<img src="https://example.com/x.png"><canvas id="blank"></canvas></body>'
    )
    html = tmp_path / "broken.html"
    html.write_text(broken)
    async with chromium(WIDTH, 1200) as tools:
        page = await load(tools, html.as_uri())
    assert any("undefinedFunction" in problem for problem in page.problems)
    assert any("Content Security Policy" in problem for problem in page.problems)
    (blank,) = [c for c in page.canvases if c["id"] == "blank"]
    assert blank["painted"] == 0
    assert not blank["charted"]
