"""`sla-processor ingest` refuses to start on a configuration it cannot serve: exit code 2 and a
message naming the file, field or variable, never a token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from processor.spawn import free_port

REPO = Path(__file__).resolve().parents[2]


def _ingest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processor", "ingest"],
        env={"PATH": "/usr/bin:/bin", "SLA_INGEST_PORT": str(free_port()), **env},
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def test_a_bad_mapping_stops_the_start_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "zendesk.toml").write_text('source = "zendesk"\nsubject = 1\ntime = "{t}"\n'
                                           '[[event]]\nname = "x"\nwhen = {}\ntype = "ticket.x"\n'
                                           'id = "{id}"\n')  # fmt: skip
    done = _ingest(tmp_path, SLA_INGEST_MAPPINGS_DIR=str(tmp_path))
    assert done.returncode == 2
    assert f"{tmp_path}/zendesk.toml: event.0.type" in done.stderr


def test_an_open_address_without_authentication_stops_the_start(tmp_path: Path) -> None:
    done = _ingest(tmp_path, SLA_INGEST_HOST="0.0.0.0")
    assert done.returncode == 2
    assert "SLA_INGEST_HOST" in done.stderr
    assert "SLA_INGEST_TOKEN_FILE" in done.stderr


def test_a_short_token_stops_the_start_without_echoing_it(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("tiny-secret\n")
    done = _ingest(tmp_path, SLA_INGEST_TOKEN_FILE=str(tokens))
    assert done.returncode == 2
    assert "16 characters" in done.stderr
    assert "tiny-secret" not in done.stderr
