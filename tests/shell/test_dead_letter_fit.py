"""A dead letter too large for one producer request is cut to fit, and says so; never refused."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from processor.sending import KEY_KEPT, fit, record_size

LIMIT = 1_000_000
ORIGIN = [("sla-error-reason", b"too_large"), ("sla-origin-offset", b"7")]


def test_a_record_that_fits_is_unchanged() -> None:
    key, value = b"T-1", b"x" * 900_000
    assert fit(key, value, ORIGIN, LIMIT) == (key, value, ORIGIN)


def test_a_20_mb_value_is_cut_to_fit_with_its_sizes_and_digest() -> None:
    value = bytes(range(256)) * (20 * 2**20 // 256)
    key, kept, headers = fit(b"T-1", value, ORIGIN, LIMIT)
    assert key == b"T-1"
    assert kept is not None
    assert value.startswith(kept)
    assert LIMIT - 64 <= record_size(key, kept, headers) <= LIMIT
    marks = dict(headers)
    assert marks["sla-truncated"] == b"value"
    assert marks["sla-original-value-bytes"] == str(len(value)).encode()
    assert marks["sla-original-key-bytes"] == b"3"
    assert marks["sla-original-value-sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers[: len(ORIGIN)] == ORIGIN


def test_a_huge_key_keeps_its_head_and_the_value_what_fits() -> None:
    key = b"k" * (3 * 2**20)
    kept_key, kept, headers = fit(key, b"{}", ORIGIN, LIMIT)
    assert kept_key == key[:KEY_KEPT]
    assert kept == b"{}"
    assert dict(headers)["sla-truncated"] == b"key"
    assert record_size(kept_key, kept, headers) <= LIMIT


@given(
    key=st.one_of(st.none(), st.integers(0, 3 * 2**20)),
    value=st.one_of(st.none(), st.integers(0, 3 * 2**20)),
    limit=st.integers(20_000, 2 * 2**20),
)
def test_whatever_the_sizes_the_record_fits(key: int | None, value: int | None, limit: int) -> None:
    raw_key = None if key is None else b"k" * key
    raw_value = None if value is None else b"v" * value
    kept_key, kept_value, headers = fit(raw_key, raw_value, ORIGIN, limit)
    assert record_size(kept_key, kept_value, headers) <= limit
    assert (kept_value is None) == (raw_value is None)
    if (kept_key, kept_value) != (raw_key, raw_value):
        assert raw_value is None or raw_value.startswith(kept_value or b"")
        assert dict(headers)["sla-original-value-bytes"] == str(value or 0).encode()


def test_huge_headers_of_the_record_are_dropped_and_the_processors_kept() -> None:
    headers = [("x-upstream", b"a" * 1_000_500), *ORIGIN]
    key, value, kept = fit(b"T-1", b"bad", headers, LIMIT)
    assert (key, value) == (b"T-1", b"bad")
    assert record_size(key, value, kept) <= LIMIT
    names = [name for name, _ in kept]
    assert "x-upstream" not in names
    assert kept[: len(ORIGIN)] == ORIGIN
    assert dict(kept)["sla-truncated"] == b"headers"
