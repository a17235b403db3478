"""The vendored chart library: the bytes recorded, the version and licence named, packaged."""

from __future__ import annotations

import hashlib
import re
import tomllib
from importlib import resources
from pathlib import Path

ASSETS = resources.files("processor") / "assets"
ROOT = Path(__file__).resolve().parents[2]


def test_the_vendored_chart_library_is_the_recorded_file() -> None:
    recorded = dict(
        reversed(line.split()) for line in (ASSETS / "SHA256SUMS").read_text().splitlines()
    )
    actual = hashlib.sha256((ASSETS / "chart.umd.min.js").read_bytes()).hexdigest()
    assert recorded["chart.umd.min.js"] == actual


def test_the_note_names_the_version_the_file_carries() -> None:
    banner = (ASSETS / "chart.umd.min.js").read_bytes()[:200].decode()
    version = re.search(r"Chart\.js v(\d+\.\d+\.\d+)", banner)
    assert version is not None
    assert f"Chart.js **{version[1]}**" in (ASSETS / "README.md").read_text()
    assert "MIT License" in banner
    assert "MIT License" in (ASSETS / "chart.js-LICENSE.md").read_text()


def test_the_assets_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "assets/*" in config["tool"]["setuptools"]["package-data"]["processor"]
