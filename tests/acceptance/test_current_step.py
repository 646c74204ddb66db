"""``durable.current_step()``: a step body's own name, cursor key, attempt, run id and
idempotency key; a clear error anywhere else."""

from __future__ import annotations

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

import durable
from durable import CurrentStep, step, workflow
from durable.testing import Environment

pytestmark = pytest.mark.anyio

SEEN: list[CurrentStep] = []


@step(retries=2, name="charge")
async def charge(amount: int) -> int:
    info = durable.current_step()
    SEEN.append(info)
    durable.logger.info("charging")
    if info.attempt < 3:
        raise ConnectionError("flaky")
    return amount


@workflow(name="pay")
async def pay() -> int:
    with pytest.raises(RuntimeError, match="inside a @step body"):
        durable.current_step()
    return await charge(1) + await charge(2)


async def test_a_step_sees_its_own_key_and_attempt_not_the_runs() -> None:
    SEEN.clear()
    async with Environment(workflows=[pay]) as env:
        with capture_logs(processors=[merge_contextvars]) as logs:
            handle = await env.start(pay)
            await env.run_until_idle()
            assert await handle.result(timeout=5) == 3

    assert [(s.cursor_key, s.attempt) for s in SEEN] == [
        ("step:charge#0", 1), ("step:charge#0", 2), ("step:charge#0", 3),
        ("step:charge#1", 1), ("step:charge#1", 2), ("step:charge#1", 3),
    ]  # fmt: skip
    assert {(s.run_id, s.workflow, s.name) for s in SEEN} == {(handle.run_id, "pay", "charge")}
    keys = {s.idempotency_key for s in SEEN}
    assert keys == {f"{handle.run_id}:step:charge#0", f"{handle.run_id}:step:charge#1"}
    # Each retry parked the run: the run's attempts grew while the step's restarted at 1.
    lines = [(e["run_attempt"], e["step_attempt"]) for e in logs if e["event"] == "charging"]
    assert [step_attempt for _, step_attempt in lines] == [1, 2, 3, 1, 2, 3]
    assert lines[3][0] > lines[3][1]


async def test_outside_a_step_body_it_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside a @step body"):
        durable.current_step()
    with pytest.raises(RuntimeError, match="inside a @step body"):
        await charge(5)  # a step called outside a run is a plain coroutine
