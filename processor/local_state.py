"""The worker's local table state: kept only after a clean at-least-once stop."""

from __future__ import annotations

import shutil
from pathlib import Path

from processor.settings import ProcessingGuarantee, Settings


def mark_clean_stop(settings: Settings) -> None:
    """Record that this run stopped cleanly under at-least-once: its local tables match Kafka."""
    if settings.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE:
        _clean_stop(settings).touch()


def _clean_stop(settings: Settings) -> Path:
    return settings.data_dir / "clean-stop"


def discard_unsafe_local_state(settings: Settings, tables: Path) -> dict[str, str] | None:
    """Delete the local RocksDB tables unless the last run stopped cleanly, at-least-once.

    Faust writes a table's local RocksDB at once, before the changelog record and before the
    outputs of the same record reach Kafka, and never rolls it back. After a crash (or, under
    exactly-once, any stop: uncommitted transactions are aborted, their table writes stay
    local) the local state can hold an event whose outputs were lost: the event, read again,
    is then a repeated id and emits nothing. Restored from the changelogs instead, the state
    holds only what Kafka kept with its outputs. Returns why it discarded, None if it did not.
    """
    marker = _clean_stop(settings)
    clean = marker.exists()
    marker.unlink(missing_ok=True)
    if settings.store != "rocksdb://" or not tables.exists():
        return None
    if clean and settings.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE:
        return None
    why = "exactly_once" if clean else "unclean stop"
    shutil.rmtree(tables)
    return {"reason": why, "path": str(tables)}
