"""Cancel: cascades to waiting children, cancels the step in flight, records nothing after."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest

import durable
from durable import Engine, RunCancelled, RunNotFound, RunStatus, SignalKind, step, workflow
from tests.acceptance import support
from tests.acceptance.support import CALLS
from tests.acceptance.waits.probes import children_of

pytestmark = pytest.mark.anyio


@workflow
async def waits_forever() -> str:
    return await durable.wait_for_signal("never")


@workflow
async def parent_of_a_waiting_child() -> str:
    return await waits_forever()


@step
async def long_step() -> str:
    CALLS["long_step.started"] += 1
    try:
        await anyio.sleep(30)
    except anyio.get_cancelled_exc_class():
        CALLS["long_step.cancelled"] += 1
        raise
    return "finished"


@step
async def stubborn_step() -> str:
    """Swallows its cancellation and returns as if nothing happened."""
    CALLS["stubborn_step.started"] += 1
    try:
        await anyio.sleep(30)
    except anyio.get_cancelled_exc_class():
        CALLS["stubborn_step.cancelled"] += 1
    return "ignored the cancel"


@step
async def after_step() -> str:
    CALLS["after_step"] += 1
    return "after"


@workflow
async def cancellable() -> str:
    await long_step()
    await after_step()
    return "done"


@workflow
async def stubborn() -> str:
    await stubborn_step()
    await after_step()
    return "done"


WORKFLOWS = [waits_forever, parent_of_a_waiting_child, cancellable, stubborn]


async def test_cancel_cascades_to_a_waiting_child(engine: Engine) -> None:
    parent = await engine.start(parent_of_a_waiting_child)
    [child_id] = await children_of(engine, parent.run_id, 1)
    child = engine.handle(child_id)
    await support.wait_for_status(child, "waiting")
    await support.wait_for_status(parent, "waiting")

    assert await parent.cancel() is True

    with pytest.raises(RunCancelled) as caught:
        await parent.result(timeout=5)
    assert caught.value.run_id == parent.run_id
    with pytest.raises(RunCancelled):
        await child.result(timeout=5)
    for run_id in (parent.run_id, child_id):
        detail = await engine.get_run(run_id)
        assert detail.status == RunStatus.CANCELLED
        assert detail.error is not None
        assert detail.error.code == "run_cancelled"

    assert await parent.cancel() is False  # already finished
    assert (await child.signal("never", 1)).kind == SignalKind.RUN_FINISHED
    with pytest.raises(RunNotFound):
        await engine.cancel(uuid.uuid4())


async def test_cancel_reaches_the_step_in_flight_and_nothing_more_is_recorded(
    engine: Engine,
) -> None:
    handle = await engine.start(cancellable)
    await support.wait_until(lambda: CALLS["long_step.started"] == 1, what="the step to start")

    started = time.perf_counter()
    assert await engine.cancel(handle.run_id) is True
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)
    await support.wait_until(lambda: CALLS["long_step.cancelled"] == 1, what="the step's cancel")
    assert time.perf_counter() - started < 2.0  # told by NOTIFY, not at the next heartbeat

    await anyio.sleep(0.3)
    detail = await engine.get_run(handle.run_id)
    assert detail.status == RunStatus.CANCELLED
    assert detail.steps == []
    assert CALLS["after_step"] == 0
    assert CALLS["long_step.started"] == 1  # the cancelled run is never claimed again


async def test_a_step_that_swallows_the_cancel_still_records_nothing(engine: Engine) -> None:
    handle = await engine.start(stubborn)
    await support.wait_until(lambda: CALLS["stubborn_step.started"] == 1, what="the step")

    await handle.cancel()
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)
    await support.wait_until(lambda: CALLS["stubborn_step.cancelled"] == 1, what="the cancel")

    await anyio.sleep(0.3)
    detail = await engine.get_run(handle.run_id)
    assert detail.status == RunStatus.CANCELLED
    assert detail.steps == []
    assert CALLS["after_step"] == 0
