"""Cancel: cascades to waiting children, cancels the step in flight, records nothing after."""

from __future__ import annotations

import uuid

import anyio
import pytest

import durable
from durable import Engine, RunCancelled, RunNotFound, RunStatus, SignalKind, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
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


async def _cancel_in_flight(engine: Engine, workflow: durable.Workflow[[], str], step: str) -> None:
    """Start ``workflow``, claim it, and cancel it while ``step`` runs. The worker is manual
    and its heartbeat 40 minutes away, so only the cancel's NOTIFY can stop the step; when
    ``claim_once`` returns, the execution has ended and nothing can record any more."""
    worker = engine.worker
    assert worker is not None
    handle = await engine.start(workflow)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.claim_once)
        await support.wait_until(lambda: CALLS[f"{step}.started"] == 1, what="the step")
        assert await engine.cancel(handle.run_id) is True
    assert CALLS[f"{step}.cancelled"] == 1
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)
    assert await worker.claim_once() == 0  # the cancelled run is never claimed again
    detail = await engine.get_run(handle.run_id)
    assert detail.status == RunStatus.CANCELLED
    assert detail.steps == []
    assert CALLS["after_step"] == 0
    assert CALLS[f"{step}.started"] == 1


async def test_cancel_reaches_the_step_in_flight_and_nothing_more_is_recorded(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(*WORKFLOWS, worker="manual", lease_seconds=7200) as engine:
        await _cancel_in_flight(engine, cancellable, "long_step")


async def test_a_step_that_swallows_the_cancel_still_records_nothing(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(*WORKFLOWS, worker="manual", lease_seconds=7200) as engine:
        await _cancel_in_flight(engine, stubborn, "stubborn_step")
