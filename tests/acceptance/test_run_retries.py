"""Run-level retries: a failed run is retried from its failed step, keeping recorded
results, up to ``retries`` times with backoff; every attempt's error stays visible."""

from __future__ import annotations

import pytest

from durable import NonRetryableError, RunStatus, WorkflowFailed, step, workflow
from durable.testing import Environment
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@step
async def reserve() -> str:
    CALLS["reserve"] += 1
    return "reserved"


@step
async def charge() -> str:
    CALLS["charge"] += 1
    if CALLS["charge"] < 3:
        raise ConnectionError(f"gateway down ({CALLS['charge']})")
    return "charged"


@workflow(retries=3, initial_interval=60, backoff=2)
async def checkout() -> list[str]:
    return [await reserve(), await charge()]


@step
async def always_fails() -> str:
    CALLS["always_fails"] += 1
    raise ValueError("bad input")


@workflow(retries=2, initial_interval=1)
async def doomed() -> str:
    return await always_fails()


@step
async def refuses() -> str:
    CALLS["refuses"] += 1
    raise NonRetryableError("card declined")


@workflow(retries=5)
async def declined() -> str:
    return await refuses()


WORKFLOWS = [checkout, doomed, declined]


async def test_a_failed_run_is_retried_from_its_failed_step_after_a_backoff() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(checkout)
        await env.run_until_idle(skip_timers=False)
        assert CALLS["charge"] == 1
        assert await handle.status() == RunStatus.PENDING  # waiting out its backoff
        await env.advance("20s")  # under the shortest jittered backoff (half of 60s)
        assert CALLS["charge"] == 1
        await env.run_until_idle()  # backoffs are timers: they fire here
        assert await handle.result(timeout=5) == ["reserved", "charged"]
        detail = await env.engine.get_run(handle.run_id)

    assert CALLS["reserve"] == 1  # recorded before the failure: never run again
    assert CALLS["charge"] == 3
    assert [e.message for e in detail.previous_errors] == ["gateway down (1)", "gateway down (2)"]
    assert detail.status == RunStatus.COMPLETED


async def test_retries_run_out_and_the_last_error_stands() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(doomed)
        await env.run_until_idle()
        with pytest.raises(WorkflowFailed) as caught:
            await handle.result(timeout=5)
        detail = await env.engine.get_run(handle.run_id)
    assert caught.value.error.message == "bad input"
    assert CALLS["always_fails"] == 3  # the first attempt and 2 retries
    assert len(detail.previous_errors) == 2


async def test_a_non_retryable_failure_is_final() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(declined)
        await env.run_until_idle()
        with pytest.raises(WorkflowFailed):
            await handle.result(timeout=5)
        assert (await env.engine.get_run(handle.run_id)).previous_errors == []
    assert CALLS["refuses"] == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [({"retries": -1}, ValueError), ({"retries": "2"}, TypeError), ({"backoff": 0.5}, ValueError)],
)
def test_bad_retry_options_are_refused(options: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        workflow(**options)  # type: ignore[call-overload]
