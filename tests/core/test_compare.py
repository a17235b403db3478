"""`sla-processor replay EVENTS --compare A B`: what a history would have given under other terms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from processor.compare import as_json, as_text, compare
from processor.replay import ReplayResult
from processor.sla.outputs import Breach, OutputTopic, Retraction
from processor.sla.vocabulary import Severity, Tier

from .factories import MIN, H, opened_data
from .test_replay import Events, cli

SEED = Path(__file__).parents[2] / "processor" / "sla" / "default_policy.toml"
SET = Path(__file__).parents[2] / "examples" / "policies" / "contracts" / "set.toml"
RENEWAL = datetime(2027, 1, 1, tzinfo=UTC)


def history(tmp_path: Path) -> Path:
    """Three high/premium tickets opened after the set's 2027 renewal (45 min there, 60 under
    the seed): one answered at 50 min (met under the seed, breached under the set), one never
    answered (breached under both, 15 min apart), one answered at 10 min (met under both)."""
    events = Events(tmp_path / "events.jsonl")
    at = RENEWAL + H
    for n, answer in enumerate((50 * MIN, None, 10 * MIN)):
        subject = f"T-{n}"
        events.add("ticket.opened", subject, at, opened_data("premium", "high", customer_id="acme"))
        if answer is not None:
            events.add("ticket.responded", subject, at + answer, {})
    events.add("ticket.updated", "T-2", at + 3 * H, {})  # the horizon
    return events.write()


def test_compare_names_gained_lost_and_moved_outputs_per_ticket(tmp_path: Path) -> None:
    run = cli("replay", history(tmp_path), "--compare", SEED, SET, "--json")
    assert run.code == 0, run.err
    document = json.loads(run.out)
    assert document["policies"] == {"a": str(SEED), "b": str(SET)}
    subjects = {s["subject"]: s for s in document["subjects"]}
    assert set(subjects) == {"T-0", "T-1"}  # T-2 is met under both: nothing differs
    opened = RENEWAL + H
    assert subjects["T-0"]["gained"] == [
        {"id": subjects["T-0"]["gained"][0]["id"], "type": "sla.breach",
         "time": (opened + 45 * MIN).isoformat().replace("+00:00", "Z")}
    ]  # fmt: skip
    assert subjects["T-0"]["lost"] == []
    [moved] = subjects["T-1"]["moved"]
    assert moved["type"] == "sla.breach"
    assert (moved["time_a"], moved["time_b"]) == (
        (opened + 60 * MIN).isoformat().replace("+00:00", "Z"),
        (opened + 45 * MIN).isoformat().replace("+00:00", "Z"),
    )
    rows = {(r["dimension"], r["value"]): r for r in document["attainment"]}
    assert rows[("severity", "high")]["a"] == {
        "tickets": 3, "met": 2, "breached": 1, "pending": 0, "attainment_pct": 66.67
    }  # fmt: skip
    assert rows[("severity", "high")]["b"] == {
        "tickets": 3, "met": 1, "breached": 2, "pending": 0, "attainment_pct": 33.33
    }  # fmt: skip
    assert rows[("customer_id", "acme")]["b"]["breached"] == 2
    assert rows[("support_tier", "premium")]["a"]["met"] == 2
    counts = {(c["type"], c["severity"]): (c["a"], c["b"]) for c in document["counts"]}
    assert counts[("sla.breach", "high")] == (1, 2)


def test_compare_as_tables(tmp_path: Path) -> None:
    run = cli("replay", history(tmp_path), "--compare", SEED, SET)
    assert run.code == 0, run.err
    text = run.out.decode()
    assert "| severity | high | 3 | 2 | 1 | 66.7% | 1 | 2 | 33.3% | -33.34 |" in text
    assert "| sla.breach | high | 1 | 2 | +1 |" in text
    assert "| T-1 | - | - | breach 2027-01-01T02:00:00Z → 2027-01-01T01:45:00Z |" in text


def test_compare_refuses_what_it_does_not_combine_with(tmp_path: Path) -> None:
    events = history(tmp_path)
    for extra in (["--policy", str(SEED)], ["--arrival"], ["--report"]):
        run = cli("replay", events, "--compare", SEED, SET, *extra)
        assert run.code == 2
        assert "--compare does not go with" in run.err
    assert cli("replay", events, "--json").code == 2
    missing = cli("replay", events, "--compare", SEED, tmp_path / "nope.toml")
    assert missing.code == 2
    assert "nope.toml" in missing.err


def test_retracted_outputs_do_not_count() -> None:
    at = datetime(2027, 1, 1, tzinfo=UTC)
    breach = Breach("T-1", "c", Severity.HIGH, Tier.BASIC, at)
    withdrawn = Retraction("T-1", "c", breach.id, breach.type, OutputTopic.BREACHES, "e-1",
                           "ticket.responded", at - MIN, at)  # fmt: skip
    a, b = ReplayResult(outputs=[breach, withdrawn]), ReplayResult(outputs=[breach])
    comparison = compare(a, b, ("a", "b"))
    assert comparison.outputs == (0, 1)
    assert [o.id for o in comparison.subjects["T-1"].gained] == [breach.id]
    assert "| sla.breach | high | 0 | 1 | +1 |" in as_text(comparison)
    assert as_json(comparison)["subjects_differing"] == 1
