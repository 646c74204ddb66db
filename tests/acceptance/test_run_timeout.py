"""Run-level timeouts: WorkflowTimeout, the running step cancelled, children cancelled."""

from __future__ import annotations

import anyio
import pytest

import durable
from durable import (
    Engine,
    RunCancelled,
    RunStatus,
    WorkflowFailed,
    WorkflowTimeout,
    step,
    workflow,
)
from durable.testing import Environment
from tests.acceptance import support
from tests.acceptance.support import CALLS
from tests.acceptance.waits.probes import children_of

pytestmark = pytest.mark.anyio


@workflow
async def waits_for_ever() -> str:
    return await durable.wait_for_signal("never")


@step
async def blocks() -> str:
    CALLS["blocks.started"] += 1
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        CALLS["blocks.cancelled"] += 1
        raise
    return "unreachable"


@workflow
async def slow_parent() -> str:
    await waits_for_ever.start()
    return await blocks()


@workflow(timeout="1h")
async def hour_bound() -> str:
    return await durable.wait_for_signal("approve")


@workflow
async def unbounded() -> str:
    return await durable.wait_for_signal("approve")


WORKFLOWS = [waits_for_ever, slow_parent, hour_bound, unbounded]


async def test_a_timeout_cancels_the_running_step_and_the_children(engine: Engine) -> None:
    handle = await engine.start(slow_parent, timeout=0.5)
    [child_id] = await children_of(engine, handle.run_id, 1)

    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=10)
    assert caught.value.error.code == WorkflowTimeout.code == "workflow_timeout"
    assert caught.value.error.type == "durable.errors.WorkflowTimeout"
    await support.wait_until(lambda: CALLS["blocks.cancelled"] == 1, what="the step's cancel")
    detail = await engine.get_run(handle.run_id)
    assert detail.status == RunStatus.FAILED
    assert [s.kind for s in detail.steps if s.kind == "step"] == []  # cancelled: no record
    with pytest.raises(RunCancelled):
        await engine.handle(child_id).result(timeout=10)


async def test_a_parked_run_times_out_when_the_clock_passes_its_deadline() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(hour_bound)
        await env.run_until_idle()
        assert await handle.status() == RunStatus.WAITING
        await env.advance("59m")
        assert await handle.status() == RunStatus.WAITING
        await env.advance("2m")
        detail = await env.engine.get_run(handle.run_id)
        assert detail.status == RunStatus.FAILED
        assert detail.error is not None
        assert detail.error.code == "workflow_timeout"


async def test_the_start_overrides_the_workflow_and_the_engine_default_applies_last() -> None:
    async with Environment(workflows=WORKFLOWS, default_workflow_timeout="1d") as env:
        longer = await env.start(hour_bound, timeout="3h")
        defaulted = await env.start(unbounded)
        await env.advance("2h")
        assert await longer.status() == RunStatus.WAITING
        assert await defaulted.status() == RunStatus.WAITING
        await env.advance("2h")
        assert await longer.status() == RunStatus.FAILED
        assert await defaulted.status() == RunStatus.WAITING
        await env.advance("1d")
        assert await defaulted.status() == RunStatus.FAILED


@pytest.mark.parametrize("bad", [0, -1, "soon", float("nan")])
async def test_a_bad_timeout_is_refused_and_stores_nothing(engine: Engine, bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await engine.start(unbounded, timeout=bad)  # type: ignore[arg-type]
    assert (await engine.list_runs()).items == []
    with pytest.raises(ValueError, match="default_workflow_timeout"):
        Engine(default_workflow_timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        workflow(timeout=bad)  # type: ignore[arg-type]
