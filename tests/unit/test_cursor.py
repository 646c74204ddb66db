"""Unit tests for cursor key assignment and the determinism check in durable._workflow.context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from structlog.contextvars import clear_contextvars

from durable._workflow.context import Record, RunContext, cursor_key
from durable.errors import DurableError, NonDeterminismError


@pytest.fixture(autouse=True)
def _no_bound_cursor() -> Iterator[None]:
    """``take()`` binds structlog's ``cursor`` in the calling context; these tests call it
    outside any execution, so unbind it rather than leak it into later tests."""
    yield
    clear_contextvars()


def _ctx(records: list[Record] | None = None) -> RunContext:
    return RunContext.load(
        records or [],
        run_id=uuid4(),
        workflow="tests.checkout",
        version=1,
        attempt=1,
        execution=None,  # type: ignore[arg-type]  # only stored
    )


def _record(key: str, seq: int, kind: str, name: str, **kw: Any) -> Record:
    fields: dict[str, Any] = {
        "status": "completed",
        "output": None,
        "error": None,
        "attempt": 1,
    }
    fields.update(kw)
    return Record(key=key, seq=seq, kind=kind, name=name, **fields)


def _recorded(*calls: tuple[str, str]) -> list[Record]:
    """Records as a first execution making ``calls`` in order would have stored them."""
    first = _ctx()
    out = []
    for kind, name in calls:
        key, seq, _ = first.take(kind, name)
        out.append(_record(key, seq, kind, name))
    return out


def test_cursor_key_format() -> None:
    assert cursor_key("step", "charge", 0) == "step:charge#0"
    assert cursor_key("step", "charge", 12) == "step:charge#12"
    assert cursor_key("sleep", "", 0) == "sleep#0"
    assert cursor_key("signal", "approve", 1) == "signal:approve#1"


def test_same_step_gets_increasing_counter() -> None:
    ctx = _ctx()
    assert ctx.take("step", "charge") == ("step:charge#0", 0, None)
    assert ctx.take("step", "charge") == ("step:charge#1", 1, None)
    assert ctx.take("step", "charge") == ("step:charge#2", 2, None)
    assert ctx.last_key == "step:charge#2"


def test_counters_are_independent_per_kind_and_name() -> None:
    ctx = _ctx()
    keys = [
        ctx.take("step", "charge")[0],
        ctx.take("step", "refund")[0],
        ctx.take("step", "charge")[0],
        ctx.take("sleep", "")[0],
        ctx.take("signal", "charge")[0],
        ctx.take("sleep", "")[0],
        ctx.take("step", "refund")[0],
        ctx.take("child", "tests.ship")[0],
    ]
    assert keys == [
        "step:charge#0",
        "step:refund#0",
        "step:charge#1",
        "sleep#0",
        "signal:charge#0",
        "sleep#1",
        "step:refund#1",
        "child:tests.ship#0",
    ]
    assert len(set(keys)) == len(keys)


def test_sequence_numbers_follow_call_order() -> None:
    ctx = _ctx()
    seqs = [ctx.take(kind, name)[1] for kind, name in [("step", "a"), ("sleep", ""), ("step", "a")]]
    assert seqs == [0, 1, 2]


def test_fresh_context_is_not_replaying() -> None:
    ctx = _ctx()
    assert ctx.replaying is False
    assert ctx.last_key is None
    ctx.take("step", "a")
    assert ctx.replaying is False
    ctx.check()  # nothing fatal


def test_replay_returns_records_and_replaying_flag() -> None:
    records = _recorded(("step", "charge"), ("sleep", ""), ("step", "charge"))
    ctx = _ctx(records)
    assert ctx.replaying is True

    key, seq, record = ctx.take("step", "charge")
    assert (key, seq) == ("step:charge#0", 0)
    assert record is records[0]
    assert ctx.replaying is True

    key, _, record = ctx.take("sleep", "")
    assert key == "sleep#0"
    assert record is records[1]
    assert ctx.replaying is True

    key, _, record = ctx.take("step", "charge")
    assert key == "step:charge#1"
    assert record is records[2]
    # Every recorded call has been replayed: what follows executes for the first time.
    assert ctx.replaying is False

    key, _, record = ctx.take("step", "charge")
    assert key == "step:charge#2"
    assert record is None
    assert ctx.replaying is False
    ctx.check()


def test_record_at_position_with_different_key_is_non_deterministic() -> None:
    records = _recorded(("step", "charge"), ("step", "ship"))
    ctx = _ctx(records)
    ctx.take("step", "charge")

    with pytest.raises(NonDeterminismError) as info:
        ctx.take("step", "refund")
    err = info.value
    assert isinstance(err, DurableError)
    assert err.code == "non_determinism"
    assert err.cursor_key == "step:ship#0"
    assert err.recorded == "step:ship"
    assert err.new == "step:refund"
    message = str(err)
    assert "step:ship#0" in message
    assert "step:ship" in message
    assert "step:refund" in message

    assert ctx.fatal is err
    with pytest.raises(NonDeterminismError) as again:
        ctx.check()
    assert again.value is err


def test_non_determinism_between_kinds() -> None:
    ctx = _ctx(_recorded(("sleep", "")))
    with pytest.raises(NonDeterminismError) as info:
        ctx.take("step", "sleep")
    assert info.value.cursor_key == "sleep#0"
    assert info.value.recorded == "sleep"
    assert info.value.new == "step:sleep"
    assert "'sleep'" in str(info.value)
    assert "'step:sleep'" in str(info.value)


def test_reordered_calls_are_non_deterministic() -> None:
    ctx = _ctx(_recorded(("step", "a"), ("step", "b")))
    with pytest.raises(NonDeterminismError) as info:
        ctx.take("step", "b")
    assert info.value.cursor_key == "step:a#0"


def test_extra_call_of_same_step_is_non_deterministic() -> None:
    # Recorded: charge, ship. Now: charge, charge -> position 1 holds ship, not charge#1.
    ctx = _ctx(_recorded(("step", "charge"), ("step", "ship")))
    ctx.take("step", "charge")
    with pytest.raises(NonDeterminismError) as info:
        ctx.take("step", "charge")
    assert info.value.cursor_key == "step:ship#0"
    assert info.value.new == "step:charge"


def test_fatal_survives_caught_error_and_later_calls() -> None:
    ctx = _ctx(_recorded(("step", "a"), ("step", "b")))
    first: NonDeterminismError | None = None
    try:
        ctx.take("step", "x")
    except NonDeterminismError as exc:  # the workflow code swallows it
        first = exc
    assert first is not None
    assert ctx.fatal is first
    with pytest.raises(NonDeterminismError):
        ctx.check()

    # A second mismatch does not replace the first fatal error.
    with pytest.raises(NonDeterminismError) as second:
        ctx.take("step", "y")
    assert second.value is not first
    assert ctx.fatal is first
    with pytest.raises(NonDeterminismError) as info:
        ctx.check()
    assert info.value is first


def test_matching_replay_never_sets_fatal() -> None:
    calls = [("step", "a"), ("sleep", ""), ("step", "a"), ("signal", "go")]
    ctx = _ctx(_recorded(*calls))
    for kind, name in calls:
        _, _, record = ctx.take(kind, name)
        assert record is not None
        ctx.check()
    assert ctx.fatal is None


def test_info_reports_cursor_and_replaying() -> None:
    ctx = _ctx(_recorded(("step", "a")))
    info = ctx.info()
    assert info.cursor is None
    assert info.replaying is True
    assert info.workflow == "tests.checkout"
    assert info.version == 1
    assert info.attempt == 1
    assert info.run_id == ctx.run_id
    ctx.take("step", "a")
    info = ctx.info()
    assert info.cursor == "step:a#0"
    assert info.replaying is False
