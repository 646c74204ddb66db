"""Signals: every delivery kind, buffering in order, typed payloads and caught timeouts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel

import durable
from durable import (
    Engine,
    RunStatus,
    SerializationError,
    SignalKind,
    SignalTimeout,
    workflow,
)
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import OBSERVED
from tests.acceptance.waits.probes import run_row, shift_clock

pytestmark = pytest.mark.anyio


class Approval(BaseModel):
    approved: bool
    by: str


@workflow
async def go_then_done() -> Any:
    go = await durable.wait_for_signal("go")
    await durable.wait_for_signal("done")
    return go


@workflow
async def start_then_two_items() -> list[Any]:
    await durable.wait_for_signal("start")
    first = await durable.wait_for_signal("item")
    second = await durable.wait_for_signal("item")
    return [first, second]


@workflow
async def typed_approval() -> dict[str, Any]:
    decision = await durable.wait_for_signal("approve", type=Approval)
    return {"type": type(decision).__name__, "approved": decision.approved, "by": decision.by}


@workflow
async def start_then_typed_approval() -> str:
    await durable.wait_for_signal("start")
    decision = await durable.wait_for_signal("approve", type=Approval)
    return decision.by


@workflow
async def approve_or_time_out(timeout: float) -> str:
    try:
        value = await durable.wait_for_signal("approve", timeout=timeout)
    except SignalTimeout as exc:
        OBSERVED.append(("caught", str(exc)))
        await durable.sleep(0.2)  # parks: the next execution must replay the same timeout
        return "timed out"
    return f"got {value}"


@workflow
async def late_signal_waits_twice() -> dict[str, Any]:
    try:
        return {"first wait": await durable.wait_for_signal("late", timeout="1h")}
    except SignalTimeout:
        return {"second wait": await durable.wait_for_signal("late", timeout="1h")}


WORKFLOWS = [
    go_then_done,
    start_then_two_items,
    typed_approval,
    start_then_typed_approval,
    approve_or_time_out,
    late_signal_waits_twice,
]


async def _signal_rows(database_url: str, run_id: uuid.UUID) -> int:
    return await support.count_rows(
        database_url, "SELECT count(*) FROM durable.signals WHERE run_id = $1", run_id
    )


# -- delivery kinds ----------------------------------------------------------------------------


async def test_delivered_duplicate_finished_and_not_found(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(go_then_done)
    await support.wait_for_status(handle, "waiting")

    delivered = await handle.signal("go", {"n": 1}, idempotency_key="go-1")
    assert delivered.kind == SignalKind.DELIVERED
    assert delivered.kind == "delivered"
    assert delivered.accepted
    assert delivered.run_id == handle.run_id
    assert delivered.name == "go"

    assert await handle.wait(signal="go", timeout=5)  # consumed; now waits for "done"
    duplicate = await engine.signal(handle.run_id, "go", {"n": 2}, idempotency_key="go-1")
    assert duplicate.kind == SignalKind.DUPLICATE
    assert not duplicate.accepted
    assert await _signal_rows(database_url, handle.run_id) == 1  # the duplicate stored nothing

    # "go" was consumed while the run was running; it parks on "done" only after that.
    await support.wait_for_status(handle, "waiting")
    assert (await handle.signal("done")).kind == SignalKind.DELIVERED
    assert await handle.result(timeout=5) == {"n": 1}

    finished = await handle.signal("go", {"n": 3})
    assert finished.kind == SignalKind.RUN_FINISHED
    assert not finished.accepted
    assert await _signal_rows(database_url, handle.run_id) == 2  # go and done only

    missing = await engine.signal(uuid.uuid4(), "go", 1)
    assert missing.kind == SignalKind.RUN_NOT_FOUND
    assert not missing.accepted


async def test_buffered_signals_are_consumed_by_the_first_matching_waits_in_order(
    engine: Engine,
) -> None:
    handle = await engine.start(start_then_two_items)
    await support.wait_for_status(handle, "waiting")  # armed for "start", not for "item"

    first = await handle.signal("item", "first")
    second = await handle.signal("item", "second")
    assert first.kind == SignalKind.BUFFERED
    assert second.kind == SignalKind.BUFFERED
    assert first.accepted

    assert (await handle.signal("start")).kind == SignalKind.DELIVERED
    assert await handle.result(timeout=5) == ["first", "second"]
    steps = {s.cursor_key: s.output for s in (await engine.get_run(handle.run_id)).steps}
    assert steps["signal:item#0"] == "first"
    assert steps["signal:item#1"] == "second"


async def test_a_signal_sent_before_the_run_started_is_buffered(make_engine: EngineFactory) -> None:
    async with make_engine(start_then_two_items, worker=False) as client:
        handle = await client.start(start_then_two_items)
        for name, payload in (("item", 1), ("start", None), ("item", 2)):
            assert (await handle.signal(name, payload)).kind == SignalKind.BUFFERED
        async with make_engine(start_then_two_items):
            assert await handle.result(timeout=5) == [1, 2]


async def test_a_signal_after_the_wait_timed_out_is_expired_and_kept_for_a_later_wait(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(late_signal_waits_twice) as worker:
        handle = await worker.start(late_signal_waits_twice)
        await support.wait_for_status(handle, "waiting")
    # No worker now: the one-hour wait passes while the run is still parked as waiting.
    async with make_engine(late_signal_waits_twice, worker=False) as client:
        await shift_clock(client, 2 * 3600)
        expired = await client.signal(handle.run_id, "late", "too late")
        assert expired.kind == SignalKind.EXPIRED
        assert expired.accepted  # stored, for a later wait only
        assert await _signal_rows(database_url, handle.run_id) == 1
        async with make_engine(late_signal_waits_twice):
            # The first wait times out (the signal came after its deadline); the next
            # wait for the same name consumes it.
            assert await client.handle(handle.run_id).result(timeout=5) == {
                "second wait": "too late"
            }


# -- typed payloads --------------------------------------------------------------------------


async def test_a_payload_that_does_not_match_the_waiting_type_is_refused(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(typed_approval)
    await support.wait_for_status(handle, "waiting")

    refused = await handle.signal("approve", {"approved": "perhaps"})
    assert refused.kind == SignalKind.INVALID_PAYLOAD
    assert not refused.accepted
    assert refused.detail is not None
    assert "approved" in refused.detail  # names the bad field
    assert await _signal_rows(database_url, handle.run_id) == 0
    assert await handle.status() == RunStatus.WAITING

    accepted = await handle.signal("approve", {"approved": True, "by": "grace"})
    assert accepted.kind == SignalKind.DELIVERED
    assert await handle.result(timeout=5) == {"type": "Approval", "approved": True, "by": "grace"}


async def test_a_buffered_payload_of_the_wrong_type_is_rejected_at_consumption(
    engine: Engine,
) -> None:
    handle = await engine.start(start_then_typed_approval)
    await support.wait_for_status(handle, "waiting")
    # The run does not wait for "approve" yet, so its type is unknown: stored as sent.
    assert (await handle.signal("approve", {"by": 42})).kind == SignalKind.BUFFERED
    assert (await handle.signal("approve", {"approved": True, "by": "ada"})).accepted
    await handle.signal("start")

    # The wait skips (rejects) the payload that does not fit and takes the next one.
    assert await handle.result(timeout=5) == "ada"
    signals = (await engine.get_run(handle.run_id)).signals
    assert [(s.name, s.status) for s in signals] == [
        ("approve", "rejected"),
        ("approve", "consumed"),
        ("start", "consumed"),
    ]
    assert "approved" in (signals[0].rejected or "")


async def test_bad_signal_arguments_fail_at_the_call(engine: Engine, database_url: str) -> None:
    handle = await engine.start(go_then_done)
    with pytest.raises(ValueError, match="signal name"):
        await handle.signal("", 1)
    with pytest.raises(SerializationError):
        await handle.signal("go", object())
    assert await _signal_rows(database_url, handle.run_id) == 0
    await handle.cancel()


# -- timeouts ----------------------------------------------------------------------------------


async def test_a_signal_timeout_is_raised_in_the_workflow_and_can_be_caught(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(approve_or_time_out, 0.3)
    await support.wait_for_status(handle, "waiting")  # parked: 0.3 s is above the inline wait
    row = await run_row(database_url, handle.run_id)
    assert row["wake_in"] <= 0.3  # the deadline is the wake time
    assert row["waiting_for"] == ["signal:approve"]

    assert await handle.result(timeout=5) == "timed out"
    # Caught on the first execution and again, at the same point, on the replay.
    assert len(OBSERVED) == 2
    assert OBSERVED[0] == OBSERVED[1]
    assert "approve" in OBSERVED[0][1]
    wait = next(s for s in (await engine.get_run(handle.run_id)).steps if s.kind == "signal")
    assert wait.cursor_key == "signal:approve#0"
    assert wait.status == "failed"
    assert wait.error is not None
    assert wait.error.type.endswith("SignalTimeout")


async def test_a_signal_before_the_timeout_wins(engine: Engine) -> None:
    handle = await engine.start(approve_or_time_out, 30.0)
    await support.wait_for_status(handle, "waiting")
    assert (await handle.signal("approve", "yes")).kind == SignalKind.DELIVERED
    assert await handle.result(timeout=5) == "got yes"
    assert OBSERVED == []
