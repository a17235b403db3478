"""The fixes are installed only on a Faust release they were verified against, and the private
parts of Faust and aiokafka the worker reads (`faust_fixes.internals`) are still there."""

from __future__ import annotations

import inspect
import types

import faust
import pytest
from aiokafka.consumer.subscription_state import Assignment

from processor.faust_fixes import UnverifiedFaust, check_version
from processor.faust_fixes.internals import client_assignment, committed_offset, rocksdb_items


@pytest.mark.parametrize("version", ["0.15.3", "0.15.10"])
def test_a_verified_release_is_accepted(version: str) -> None:
    check_version(version)


@pytest.mark.parametrize("version", ["0.15.2", "0.16.0", "1.0.0", "0.15", "dev"])
def test_any_other_release_is_refused_by_name(version: str) -> None:
    with pytest.raises(UnverifiedFaust, match=f"faust-streaming {version}: "):
        check_version(version)


def test_the_installed_release_is_verified() -> None:
    check_version(faust.__version__)


def test_the_private_attributes_read_are_still_there() -> None:
    """If one goes, its reader in `internals` answers the cheap way; look at it again."""
    from faust.stores.rocksdb import Store
    from faust.transport.consumer import Consumer, Fetcher

    assert "state_value" in vars(Assignment)
    assert "_committed_offset" in inspect.getsource(Consumer.__init__)
    assert "maybe_start" in dir(Fetcher)
    assert "_visible_items" in vars(Store)
    assert "self._dbs" in inspect.getsource(Store)


def test_the_readers_answer_the_cheap_way_without_them() -> None:
    bare = types.SimpleNamespace()
    assert client_assignment(bare) is None
    assert committed_offset(bare, "tp") is None
    assert rocksdb_items(types.SimpleNamespace(data={}), [0]) is None  # the memory store
