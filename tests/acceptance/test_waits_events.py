"""Events and progress: ``set_event``/``get_event`` and ``handle.wait(step=, signal=, event=)``,
woken by NOTIFY: with a 30 s fallback poll they still return within a fraction of it."""

from __future__ import annotations

import anyio
import pytest

import durable
from durable import Engine, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio

SLOW_POLL = 30.0  # the fallback poll: anything much faster than this was woken by NOTIFY
PROMPT = 2.0


@step
async def compute() -> int:
    CALLS["compute"] += 1
    return 42


@workflow
async def reports_progress() -> str:
    await durable.set_event("stage", "waiting for go")
    await durable.wait_for_signal("go")
    value = await compute()
    await durable.set_event("result", {"value": value})
    await durable.set_event("stage", "waiting for finish")
    await durable.wait_for_signal("finish")
    await durable.sleep(0.2)  # parks: a replay must not publish the events again
    return "finished"


WORKFLOWS = [reports_progress]


async def test_events_are_published_and_read_back(engine: Engine) -> None:
    handle = await engine.start(reports_progress)
    assert await handle.wait(event="stage", timeout=5) is True
    assert await handle.get_event("stage") == "waiting for go"
    assert await handle.get_event("result") is None  # never set yet
    assert (await engine.get_run(handle.run_id)).events == {"stage": "waiting for go"}

    await handle.signal("go")
    assert await handle.wait(event="result", timeout=5) is True
    assert await handle.get_event("result") == {"value": 42}
    await support.wait_for_status(handle, "waiting")
    assert await handle.get_event("stage") == "waiting for finish"  # the latest value wins

    await handle.signal("finish")
    assert await handle.result(timeout=5) == "finished"
    detail = await engine.get_run(handle.run_id)
    assert detail.events == {"stage": "waiting for finish", "result": {"value": 42}}
    event_keys = [s.cursor_key for s in detail.steps if s.kind == "event"]
    assert event_keys == ["event:stage#0", "event:result#0", "event:stage#1"]
    assert CALLS["compute"] == 1


async def test_waits_on_step_signal_and_event_are_woken_by_notify(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(reports_progress, poll_interval=SLOW_POLL) as engine:
        handle = await engine.start(reports_progress)
        assert await handle.wait(event="stage", timeout=PROMPT)
        await support.wait_for_status(handle, "waiting")

        returned: dict[str, tuple[bool, bool]] = {}
        sent = anyio.Event()

        async def wait_for(what: str, target: str) -> None:
            happened = await handle.wait(timeout=SLOW_POLL / 2, **{what: target})
            returned[what] = (happened, sent.is_set())

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for, "step", "step:compute#0")
            tg.start_soon(wait_for, "signal", "go")
            tg.start_soon(wait_for, "event", "result")
            await anyio.sleep(0.3)  # time to park on NOTIFY (a wait not yet parked still holds)
            sent.set()
            await handle.signal("go")

        # Each wait's own timeout is half the fallback poll: returning true proves NOTIFY,
        # and none returned before the signal that makes all three happen was sent.
        assert returned == {what: (True, True) for what in ("step", "signal", "event")}

        await support.wait_for_status(handle, "waiting")
        await handle.signal("finish")  # delivery wakes the worker in its own transaction
        assert await handle.wait(signal="finish", timeout=SLOW_POLL / 2)
        await handle.cancel()  # its 0.2 s sleep is timed in test_waits_timers


async def test_wait_reports_a_run_that_finished_without_it(engine: Engine) -> None:
    handle = await engine.start(reports_progress)
    await support.wait_for_status(handle, "waiting")
    with pytest.raises(TimeoutError):
        await handle.wait(signal="go", timeout=0.2)
    with pytest.raises(ValueError, match="step=, signal= or event="):
        await handle.wait()

    await handle.signal("go")
    await handle.signal("finish")
    await handle.result(timeout=5)
    assert await handle.wait(step="step:never#0", timeout=5) is False
    assert await handle.wait(event="never", timeout=5) is False
    assert await handle.wait(step="step:compute#0", timeout=5) is True
