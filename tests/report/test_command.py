"""`sla-processor report` end to end: files in, HTML, JSON and CSV out, usage errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from processor.cli import main

from .events import MIN, ROOT, T0, H, Lines, arrived, rfc3339


def _history(path: Path) -> Path:
    lines = Lines()
    lines.open("T-1", T0, "high", "premium", customer="ACME")
    lines.add("ticket.responded", "T-1", T0 + 59 * MIN)  # met
    lines.open("T-2", T0, "high", "premium", customer="Globex")
    lines.add("ticket.responded", "T-2", T0 + 61 * MIN)  # breached
    path.write_bytes(b"\n".join(lines.in_time_order()) + b"\n")
    return path


def test_every_output_at_once(tmp_path: Path) -> None:
    events = _history(tmp_path / "events.jsonl")
    html, data, table = tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.csv"
    code = main(["report", str(events), "--html", str(html), "--json", str(data),
                 "--csv", str(table)])  # fmt: skip
    assert code == 0
    doc = json.loads(data.read_text())
    assert doc["summary"] | {"tickets": 2, "met": 1, "breached": 1} == doc["summary"]
    assert doc["horizon"] == rfc3339(T0 + 61 * MIN)  # the last event's time
    assert doc["events"] == 4
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert {"section": "summary", "week": "", "severity": "", "tier": "", "customer": "",
            "metric": "attainment_pct", "value": "50.0"} in rows  # fmt: skip
    assert "Globex" in html.read_text()


def test_json_and_csv_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _history(tmp_path / "events.jsonl")
    assert main(["report", str(events), "--json", "-", "--until", rfc3339(T0 + 3 * H)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["horizon"] == rfc3339(T0 + 3 * H)
    assert main(["report", str(events), "--csv", "-"]) == 0
    assert capsys.readouterr().out.startswith("section,week,severity,tier,customer,metric,value\n")


def test_arrival_order_and_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = Lines()
    lines.open("T", T0, "high", "premium")
    answer = lines.add("ticket.responded", "T", T0 + 59 * MIN)
    events = tmp_path / "arrivals.jsonl"
    events.write_bytes(lines.lines[0] + b"\n" + arrived(T0 + 70 * MIN, answer) + b"\n")
    policy = ROOT / "examples/policies/extended.toml"
    assert main(["report", str(events), "--arrival", "--policy", str(policy), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # The late answer retracted the breach (the extended policy corrects late events).
    assert (doc["summary"]["met"], doc["summary"]["breached"]) == (1, 0)
    assert doc["retracted_outputs"] >= 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "name at least one of --html, --json, --csv"),
        (["--json", "-", "--csv", "-"], "'-' may stand for one stream only"),
        (["--json", "-", "--policy", "/nonexistent.toml"], "invalid policy"),
    ],
)
def test_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    events = _history(tmp_path / "events.jsonl")
    assert main(["report", str(events), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_bytes(b"")
    html = tmp_path / "r.html"
    assert main(["report", str(events), "--json", "-", "--html", str(html)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["summary"]["tickets"], doc["horizon"]) == (0, None)
    assert "No tickets in the input." in html.read_text()


def test_a_policy_set_judges_each_ticket_by_its_version(tmp_path: Path) -> None:
    """acme-au is served from Sydney in the example set (docs/policies.md): a normal/premium
    ticket opened Friday 2026-03-06 15:00 AEDT and answered five hours later met its four
    working hours there (two had elapsed), and breached them on the seed's 24x7 clock."""
    opened = datetime(2026, 3, 6, 4, 0, tzinfo=UTC)
    lines = Lines()
    lines.open("T-1", opened, "normal", "premium", customer="acme-au")
    lines.add("ticket.responded", "T-1", opened + 5 * H)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines.in_time_order()) + b"\n")
    seed, under_set = tmp_path / "seed.json", tmp_path / "set.json"
    assert main(["report", str(events), "--json", str(seed)]) == 0
    example = ROOT / "examples/policies/contracts/set.toml"
    assert main(["report", str(events), "--policy", str(example), "--json", str(under_set)]) == 0
    summary = {name: json.loads(path.read_text())["summary"]
               for name, path in (("seed", seed), ("set", under_set))}  # fmt: skip
    assert (summary["seed"]["met"], summary["seed"]["breached"]) == (0, 1)
    assert (summary["set"]["met"], summary["set"]["breached"]) == (1, 0)
