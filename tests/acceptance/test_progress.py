"""Progress: ``durable.set_progress`` (recorded, replay-safe), ``expected_steps``, and
``handle.progress()`` / ``RunDetail.progress`` read by a client without the code."""

from __future__ import annotations

import pytest

import durable
from durable import Engine, Progress, step, workflow
from durable.testing import Environment
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@step
async def work(n: int) -> int:
    CALLS["work"] += 1
    return n


@workflow(name="progress.declared")
async def declared() -> str:
    await durable.set_progress(0.25, "reserving")
    await work(1)
    await durable.set_progress(0.5, "charging")
    await durable.wait_for_signal("go")
    await durable.set_progress(0.9, "shipping")
    return "done"


@workflow(name="progress.counted", expected_steps=4)
async def counted() -> str:
    await work(1)
    await work(2)
    await durable.wait_for_signal("go")
    return "done"


@step
async def meddles() -> None:
    await durable.set_progress(0.1)


@workflow(name="progress.misused")
async def misused() -> list[str]:
    problems = []
    for bad in (1.5, -0.1, float("nan"), True, "half"):
        try:
            await durable.set_progress(bad)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            problems.append(type(exc).__name__)
    try:
        await meddles()
    except durable.DurableCallInStep as exc:  # like every durable call inside a step body
        problems.append(exc.code)
    return problems


WORKFLOWS = [declared, counted, misused]


async def test_declared_progress_is_readable_by_a_client_without_the_code() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(declared)
        await env.run_until_idle()
        assert await handle.progress() == Progress(1, 0.5, "charging", None)

        # A client with no workflow registered at all reads the same.
        async with Engine(env.database_url, worker=False, workflows=[]) as client:
            assert await client.handle(handle.run_id).progress() == Progress(
                1, 0.5, "charging", None
            )

        await handle.signal("go", None)
        await env.run_until_idle()
        assert await handle.result(timeout=5) == "done"
        detail = await env.engine.get_run(handle.run_id)

    assert detail.progress == Progress(1, 1.0, "shipping", None)  # completed: 1.0
    keys = [s.cursor_key for s in detail.steps if s.kind == "progress"]
    assert keys == ["progress#0", "progress#1", "progress#2"]  # replays wrote none again
    assert [s.output for s in detail.steps if s.kind == "progress"][1] == {
        "fraction": 0.5,
        "message": "charging",
    }
    assert CALLS["work"] == 1


async def test_expected_steps_turn_completed_steps_into_a_fraction() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(counted)
        await env.run_until_idle()
        assert await handle.progress() == Progress(2, 0.5, None, 4)
        assert (await env.engine.get_run(handle.run_id)).progress == Progress(2, 0.5, None, 4)


async def test_bad_progress_is_refused_and_stores_nothing() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(misused)
        await env.run_until_idle()
        assert await handle.result(timeout=5) == [
            "ValueError", "ValueError", "ValueError", "TypeError", "TypeError",
            "durable_call_in_step",
        ]  # fmt: skip
        detail = await env.engine.get_run(handle.run_id)
    assert [s for s in detail.steps if s.kind == "progress"] == []
    assert detail.progress == Progress(0, 1.0, None, None)
    with pytest.raises(RuntimeError, match="inside a @workflow"):
        await durable.set_progress(0.5)
    with pytest.raises(ValueError, match="expected_steps"):
        workflow(expected_steps=0)
