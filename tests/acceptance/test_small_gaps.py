"""Smaller verbs: sleep_until with ISO-8601 strings, durable.pause() until resume, and
fast_forward of a paused run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import durable
from durable import ForwardKind, RunStatus, step, workflow
from durable.testing import Environment
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@workflow(name="gaps.until")
async def until(when: str) -> str:
    await durable.sleep_until(when)
    return "woke"


@workflow(name="gaps.naive")
async def naive() -> list[str]:
    problems = []
    for when in ("2030-01-01T09:00:00", datetime(2030, 1, 1), "next tuesday", 42):
        try:
            await durable.sleep_until(when)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            problems.append(type(exc).__name__)
    return problems


@step
async def after_pause() -> str:
    CALLS["after_pause"] += 1
    return "went on"


@workflow(name="gaps.pauses")
async def pauses() -> str:
    await durable.pause()
    return await after_pause()


WORKFLOWS = [until, naive, pauses]


async def test_sleep_until_takes_an_iso_string_with_an_offset() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        wake = datetime.fromtimestamp(await env.now(), UTC) + timedelta(hours=5)
        handle = await env.start(until, wake.isoformat().replace("+00:00", "Z"))
        await env.run_until_idle(skip_timers=False)
        assert await handle.status() == RunStatus.SLEEPING
        await env.advance("4h")
        assert await handle.status() == RunStatus.SLEEPING
        await env.advance("2h")
        assert await handle.result(timeout=5) == "woke"


async def test_naive_or_unparseable_times_are_refused() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(naive)
        await env.run_until_idle()
        problems = await handle.result(timeout=5)
        detail = await env.engine.get_run(handle.run_id)
    assert problems == ["ValueError", "ValueError", "ValueError", "TypeError"]
    assert [s for s in detail.steps if s.kind == "sleep"] == []  # nothing recorded


async def test_pause_parks_the_run_until_resume() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(pauses)
        await env.run_until_idle()
        assert await handle.status() == RunStatus.PAUSED
        await env.advance("30d")  # time alone never ends a pause
        assert await handle.status() == RunStatus.PAUSED
        assert CALLS["after_pause"] == 0
        assert await env.engine.resume(handle.run_id) is True
        await env.run_until_idle()
        assert await handle.result(timeout=5) == "went on"
        detail = await env.engine.get_run(handle.run_id)
    assert [s.cursor_key for s in detail.steps] == ["pause#0", "step:after_pause#0"]


async def test_fast_forward_of_a_paused_run_resumes_it() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(pauses)
        await env.run_until_idle()
        assert (await env.engine.fast_forward(handle.run_id)).kind == ForwardKind.RESUMED
        await env.run_until_idle()
        assert await handle.result(timeout=5) == "went on"

        sleeper = await env.start(until, "2099-01-01T00:00:00+00:00")
        await env.run_until_idle(skip_timers=False)
        await env.engine.pause(sleeper.run_id)
        result = await env.engine.fast_forward(sleeper.run_id)
        assert result.kind == ForwardKind.WOKEN  # resumed, and its sleep cut short
        await env.run_until_idle(skip_timers=False)
        assert await sleeper.result(timeout=5) == "woke"
