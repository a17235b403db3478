"""The machine-readable contract: schemas/json/ and schemas/asyncapi.yaml are what the typed
models give (regenerating changes nothing), the AsyncAPI document passes the AsyncAPI
initiative's parser, and real inputs and outputs pass their JSON Schemas (bad ones do not)."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from processor.replay import read_events, replay
from processor.sla import engine
from processor.sla.policy import load_policy
from schemas import generate
from schemas.cloudevents import parse_event
from schemas.outputs import encode
from tests.histories import histories

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "tools" / "asyncapi" / "check.mjs"
EXTENDED_SECONDS = REPO / "examples" / "policies" / "extended-seconds.toml"


def test_regenerating_changes_nothing() -> None:
    generated = generate.files()
    for path, text in generated.items():
        assert path.read_text() == text, f"{path} drifted: run .venv/bin/python -m schemas.generate"
    on_disk = set((REPO / "schemas" / "json").rglob("*.json")) | {REPO / "schemas/asyncapi.yaml"}
    assert on_disk == set(generated)


def _parse(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is missing (Debian package nodejs)"
    assert (CHECK.parent / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is missing: make test installs it (npm ci --prefix tools/asyncapi)"
    )
    return subprocess.run([node, str(CHECK), str(path)], cwd=CHECK.parent, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def test_the_asyncapi_document_passes_the_parser() -> None:
    done = _parse(REPO / "schemas" / "asyncapi.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["channels"] == sorted(
        ["tickets.events", "maintenance.events", "tickets.events.dlq", "maintenance.events.dlq",
         "sla.escalations", "sla.updates-due", "sla.breaches", "maintenance.notices",
         "sla.warnings", "sla.acknowledgements", "sla.retractions", "tickets.surveys"]
    )  # fmt: skip
    payloads = summary["payloads"]
    assert set(payloads) == {*generate.INPUTS, *generate.OUTPUTS, "dead-letter"}
    for name in (*generate.INPUTS, *generate.OUTPUTS):  # the file $refs were resolved
        assert {"id", "subject", "time", "type", "data"} <= set(payloads[name]), name


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    document = generate.asyncapi()
    broken = copy.deepcopy(document)
    broken["operations"]["send-escalations"]["action"] = "publish"  # AsyncAPI 2's word
    shutil.copytree(REPO / "schemas" / "json", tmp_path / "json")
    (tmp_path / "asyncapi.json").write_text(json.dumps(broken))
    done = _parse(tmp_path / "asyncapi.json")
    assert done.returncode == 1, done.stdout
    assert '"severity":0' in done.stdout


def _validator(direction: str, name: str) -> Draft202012Validator:
    path = REPO / "schemas" / "json" / direction / f"{name}.schema.json"
    return Draft202012Validator(json.loads(path.read_text()), format_checker=FormatChecker())


def _outputs_of_histories() -> tuple[list[bytes], list[dict[str, Any]]]:
    """Inputs and outputs of random histories under the demo's clock with every optional rule,
    and the retraction of a late response (an in-order history has none)."""
    base = datetime(2026, 12, 1, 9, tzinfo=UTC)
    policy = load_policy(EXTENDED_SECONDS)
    lines = [raw for _, raw in histories(7, tickets=60, maintenances=6, start=base,
                                         end=base + timedelta(minutes=30), policy=policy)]  # fmt: skip
    result = replay(read_events(lines, io.StringIO()), policy, base + timedelta(hours=2),
                    io.StringIO())  # fmt: skip
    outputs = list(result.outputs)
    opened = parse_event(orjson.dumps({"specversion": "1.0", "id": "r1", "source": "t",
        "type": "ticket.opened", "time": base.isoformat(), "subject": "R-1",
        "data": {"customer_id": "c", "support_tier": "basic", "severity": "urgent"}}))  # fmt: skip
    late = parse_event(orjson.dumps({"specversion": "1.0", "id": "r2", "source": "t",
        "type": "ticket.responded", "time": (base + timedelta(seconds=1)).isoformat(),
        "subject": "R-1"}))  # fmt: skip
    state = engine.decide(None, opened, policy).state
    assert state is not None
    state = engine.advance(state, base + timedelta(seconds=5), policy).state
    outputs += engine.decide(state, late, policy).outputs
    return lines, [orjson.loads(encode(o, o.time + timedelta(seconds=1))) for o in outputs]


def test_real_inputs_and_outputs_pass_their_schemas() -> None:
    lines, outputs = _outputs_of_histories()
    assert len(outputs) > 20
    for line in lines:
        event = orjson.loads(line)
        if not event["subject"].startswith("H7-X"):  # the deliberately invalid ones
            _validator("input", event["type"]).validate(event)
    seen = set()
    for output in outputs:
        name = output["type"]
        if name.startswith("maintenance."):
            name = "maintenance.notices"
        elif name.startswith("sla.escalation_"):
            name = "sla.acknowledgements"
        _validator("output", name).validate(output)
        seen.add(name)
    assert seen == set(generate.OUTPUTS)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda o: o["data"].pop("ticket_id"), "required"),
        (lambda o: o["data"].update(step=0), "minimum"),
        (lambda o: o["data"].update(severity="critical"), "enum"),
        (lambda o: o["data"].update(after="15 minutes"), "pattern"),
        (lambda o: o.update(time="yesterday"), "format"),
        (lambda o: o.update(extra=1), "additionalProperties"),
    ],
    ids=["missing", "minimum", "enum", "duration", "instant", "extra"],
)
def test_a_wrong_output_fails_its_schema(change: Any, where: str) -> None:
    _, outputs = _outputs_of_histories()
    escalation = copy.deepcopy(next(o for o in outputs if o["type"] == "sla.escalation"))
    change(escalation)
    errors = list(_validator("output", "sla.escalation").iter_errors(escalation))
    assert [e.validator for e in errors] == [where]
