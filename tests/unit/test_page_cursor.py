"""The page cursor codec of ``list_runs`` on its own: a cursor round-trips its position,
and a malformed or forged one is a short, clear ``ValueError``."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable._foundation.views import decode_cursor, encode_cursor


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@given(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])),
    st.uuids(),
)
def test_a_cursor_round_trips_its_position(created_at: datetime, run_id: UUID) -> None:
    cursor = encode_cursor(created_at, run_id)
    assert decode_cursor(cursor) == (created_at, run_id)
    assert "=" not in cursor  # url-safe, no padding: fits a query string as is
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_decoding_keeps_the_time_zone() -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    decoded, _ = decode_cursor(encode_cursor(moment, uuid4()))
    assert decoded.utcoffset() == timedelta(hours=5)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        _raw(["2026-01-01T00:00:00+00:00"]),  # one value, not two
        _raw(["yesterday", str(uuid4())]),
        _raw(["2026-01-01T00:00:00+00:00", "not-a-uuid"]),
        _raw({"created": "2026-01-01T00:00:00+00:00"}),
        _raw([1, 2]),
        _raw([[[[[]]]]] * 2),
        _raw("[" * 100_000),
    ],
)
def test_a_malformed_cursor_is_a_clear_value_error(cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid page cursor") as caught:
        decode_cursor(cursor)
    assert len(str(caught.value)) < 100  # never echoed in full
    assert caught.value.__cause__ is None


def test_a_deeply_nested_forged_cursor_is_refused_not_a_crash() -> None:
    forged = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
    with pytest.raises(ValueError, match="invalid page cursor"):
        decode_cursor(forged)
