"""The local RocksDB tables are kept only after a clean at-least-once stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.local_state import discard_unsafe_local_state
from processor.settings import Settings


def tables_in(tmp_path: Path) -> Path:
    tables = tmp_path / "v1" / "tables"
    (tables / "tickets-0.db").mkdir(parents=True)
    return tables


@pytest.mark.parametrize(
    ("guarantee", "clean", "kept"),
    [
        ("at_least_once", True, True),
        ("at_least_once", False, False),  # a crash: local state may be ahead of Kafka
        ("exactly_once", True, False),  # aborted transactions leave their writes locally
        ("exactly_once", False, False),
    ],
)
def test_local_tables_survive_only_a_clean_at_least_once_stop(
    tmp_path: Path, guarantee: str, clean: bool, kept: bool
) -> None:
    settings = Settings(data_dir=tmp_path, processing_guarantee=guarantee, store="rocksdb://")
    tables = tables_in(tmp_path)
    if clean:
        (tmp_path / "clean-stop").touch()
    discarded = discard_unsafe_local_state(settings, tables)
    assert tables.exists() is kept
    assert (discarded is None) is kept
    assert not (tmp_path / "clean-stop").exists()  # this run must earn its own marker


def test_the_memory_store_has_nothing_local_to_discard(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store="memory://")
    tables = tables_in(tmp_path)
    assert discard_unsafe_local_state(settings, tables) is None
    assert tables.exists()
