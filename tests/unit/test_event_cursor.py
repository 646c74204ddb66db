"""Event cursors and kinds: round trips, and clear errors for anything else."""

from __future__ import annotations

import pytest

from durable import EventKind
from durable._client.event_stream import check_kinds, decode_position, encode_position


def test_a_cursor_round_trips_and_orders_by_position() -> None:
    assert decode_position(encode_position(812, 40)) == (812, 40)
    assert decode_position(encode_position(2**40, 2**62)) == (2**40, 2**62)


@pytest.mark.parametrize("bad", ["", "12", "a.b", "1.-2", "1.2.3", "-1.2", f"{2**64}.1", " 1.2"])
def test_a_malformed_cursor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an event cursor"):
        decode_position(bad)


def test_a_cursor_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="event cursor string"):
        decode_position(12)  # type: ignore[arg-type]


def test_kinds() -> None:
    assert check_kinds(None) is None
    assert check_kinds([EventKind.RUN_FAILED, "step.failed"]) == ["run.failed", "step.failed"]
    with pytest.raises(ValueError, match=r"unknown event kinds \['step.started'\]"):
        check_kinds(["step.started"])
    with pytest.raises(TypeError, match="not a string"):
        check_kinds("run.failed")
