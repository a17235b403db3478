"""Output ids: uuid5 over an output's logical identity, formatted without the `uuid` module."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from processor.sla.outputs import _NAMESPACE, deterministic_id

parts = st.lists(
    st.one_of(st.text(), st.integers(), st.sampled_from(["sla.breach", "T-1", "\x1f", "é"])),
    min_size=1,
    max_size=5,
)


@given(parts)
def test_ids_are_the_uuid5_of_the_joined_parts(values: list[object]) -> None:
    expected = uuid.uuid5(_NAMESPACE, "\x1f".join(map(str, values)))
    assert deterministic_id(*values) == str(expected)


def test_ids_are_version_5_with_the_rfc_4122_variant() -> None:
    ids = [uuid.UUID(deterministic_id("sla.breach", f"T-{i}", 1)) for i in range(256)]
    assert {i.version for i in ids} == {5}
    assert {i.variant for i in ids} == {uuid.RFC_4122}
    assert {str(i)[19] for i in ids} == set("89ab")  # every variant digit occurs
