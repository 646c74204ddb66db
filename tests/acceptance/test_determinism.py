"""Changing what a parked run's code calls at a recorded position fails it with a clear error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durable import Engine, RunStatus, WorkflowFailed, step, workflow
from tests.acceptance import support
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio

CODE_VERSION = {"first": "reserve"}
"""Which step the deployed code calls first; the test flips it to simulate a deploy."""


@pytest.fixture(autouse=True)
def _original_code() -> Iterator[None]:
    CODE_VERSION["first"] = "reserve"
    yield
    CODE_VERSION["first"] = "reserve"


@step
async def reserve_stock() -> str:
    CALLS["reserve_stock"] += 1
    return "reserved"


@step
async def charge_first() -> str:
    CALLS["charge_first"] += 1
    return "charged"


@workflow
async def evolving_checkout() -> str:
    if CODE_VERSION["first"] == "reserve":
        first = await reserve_stock()
    else:
        first = await charge_first()
    await support.park_once()
    return first


@workflow
async def swallowing_checkout() -> str:
    try:
        if CODE_VERSION["first"] == "reserve":
            await reserve_stock()
        else:
            await charge_first()
    except Exception:  # workflow code cannot hide a non-determinism error
        CALLS["swallowed"] += 1
    await support.park_once()
    return "swallowed"


WORKFLOWS = [evolving_checkout, swallowing_checkout]


async def test_same_code_resumes_normally(engine: Engine) -> None:
    handle = await engine.start(evolving_checkout)
    await support.wait_for_status(handle, "sleeping")
    assert await handle.result(timeout=5) == "reserved"
    assert CALLS["reserve_stock"] == 1


async def test_changed_code_at_a_recorded_position_raises_non_determinism(engine: Engine) -> None:
    handle = await engine.start(evolving_checkout)
    await support.wait_for_status(handle, "sleeping")
    CODE_VERSION["first"] = "charge"  # a deploy changes the first call while the run sleeps

    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    error = caught.value.error
    assert error.type.endswith("NonDeterminismError")
    assert error.code == "non_determinism"
    assert "step:reserve_stock#0" in error.message  # the cursor key of the position
    assert "'step:reserve_stock'" in error.message  # the recorded call
    assert "'step:charge_first'" in error.message  # the call the code makes now

    assert CALLS["reserve_stock"] == 1
    assert CALLS["charge_first"] == 0  # the new call never ran
    assert CALLS["park_once"] == 1  # nothing after the mismatch ran either
    detail = await engine.get_run(handle.run_id)
    assert detail.status == RunStatus.FAILED
    assert detail.attempt == 2
    assert [s.cursor_key for s in detail.steps] == ["step:reserve_stock#0", "step:park_once#0"]


async def test_non_determinism_fails_the_run_even_when_the_workflow_catches_it(
    engine: Engine,
) -> None:
    handle = await engine.start(swallowing_checkout)
    await support.wait_for_status(handle, "sleeping")
    CODE_VERSION["first"] = "charge"

    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert caught.value.error.type.endswith("NonDeterminismError")
    assert "step:reserve_stock#0" in caught.value.error.message
    assert CALLS["charge_first"] == 0
    assert CALLS["park_once"] == 1
