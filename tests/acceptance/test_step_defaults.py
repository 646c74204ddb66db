"""Default step policy: the engine's defaults, a workflow's defaults, a step's own options."""

from __future__ import annotations

import anyio
import pytest

from durable import Engine, WorkflowFailed, step, workflow
from durable.testing import Environment
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@step
async def flaky() -> str:
    CALLS["flaky"] += 1
    raise ConnectionError("always down")


@step(retries=0)
async def flaky_once() -> str:
    CALLS["flaky_once"] += 1
    raise ConnectionError("always down")


@step
async def hangs() -> str:
    await anyio.sleep_forever()
    return "unreachable"


@step(timeout="1h")
async def slow_but_allowed() -> str:
    await anyio.sleep(0.3)
    return "done"


@workflow
async def uses_engine_defaults() -> str:
    return await flaky()


@workflow
async def opts_out() -> str:
    return await flaky_once()


@workflow(step_retries=1)
async def own_defaults() -> str:
    return await flaky()


@workflow
async def hanging() -> str:
    return await hangs()


@workflow(step_timeout="1h")
async def patient() -> str:
    return await slow_but_allowed()


@workflow(step_timeout=0.2)
async def impatient() -> str:
    return await hangs()


WORKFLOWS = [uses_engine_defaults, opts_out, own_defaults, hanging, patient, impatient]


async def _error_of(env: Environment, wf: object) -> str:
    handle = await env.start(wf)  # type: ignore[arg-type]
    await env.run_until_idle()
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=10)
    return caught.value.error.type


async def test_retries_come_from_the_step_then_the_workflow_then_the_engine() -> None:
    async with Environment(workflows=WORKFLOWS, default_step_retries=2) as env:
        assert await _error_of(env, uses_engine_defaults) == "builtins.ConnectionError"
        assert CALLS["flaky"] == 3  # the engine's 2 retries
        CALLS.clear()
        await _error_of(env, opts_out)
        assert CALLS["flaky_once"] == 1  # its own retries=0 wins
        await _error_of(env, own_defaults)
        assert CALLS["flaky"] == 2  # the workflow's step_retries=1 wins over the engine


async def test_timeouts_come_from_the_step_then_the_workflow_then_the_engine() -> None:
    async with Environment(workflows=WORKFLOWS, default_step_timeout=0.2) as env:
        assert await _error_of(env, hanging) == "durable.errors.StepTimeout"
        assert await _error_of(env, impatient) == "durable.errors.StepTimeout"
        handle = await env.start(patient)
        assert await handle.result(timeout=10) == "done"  # its own 1h beats the 0.2s


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"default_step_retries": -1}, ValueError),
        ({"default_step_retries": "3"}, TypeError),
        ({"default_step_retries": True}, TypeError),
        ({"default_step_timeout": 0}, ValueError),
        ({"default_step_timeout": "later"}, ValueError),
    ],
)
def test_bad_engine_defaults_are_refused(options: dict[str, object], error: type) -> None:
    with pytest.raises(error, match="default_step"):
        Engine("postgresql://unused", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"step_retries": -1}, ValueError),
        ({"step_retries": 1.5}, TypeError),
        ({"step_timeout": -1}, ValueError),
    ],
)
def test_bad_workflow_defaults_are_refused(options: dict[str, object], error: type) -> None:
    with pytest.raises(error, match="step_"):
        workflow(**options)  # type: ignore[call-overload]
