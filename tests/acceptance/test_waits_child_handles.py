"""A child handle from ``wf.start()`` inside a workflow: usable, and replay-safe.

``await handle.result()`` is a durable wait (parks the parent, replayed from its record);
``status``/``get_event``/``cancel``/``signal`` are recorded like steps; ``wait``/``detail``
are refused inside a workflow.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable import Engine, RunStatus, WorkflowFailed, workflow
from durable.testing import Environment
from tests.acceptance.support import CALLS, OBSERVED

pytestmark = pytest.mark.anyio


@workflow(name="tests.handles.gated_child")
async def gated_child(x: int) -> int:
    await durable.set_event("seen", x)
    await durable.wait_for_signal("go")
    CALLS[("gated_child", x)] += 1
    return x * 10


@workflow(name="tests.handles.failing_child")
async def failing_child() -> int:
    raise ValueError("child refuses")


@workflow(name="tests.handles.parent")
async def parent_drives_child(x: int) -> dict[str, Any]:
    handle = await gated_child.start(x)
    assert await handle.signal("go") is not None  # recorded: sent once, even on replays
    status = await handle.status()
    value = await handle.result()  # a durable wait: the parent parks until the child ends
    event = await handle.get_event("seen")
    OBSERVED.append((str(status), value, event))
    await durable.sleep(0.2)  # parks: the replay returns every recorded call above
    return {"status": str(status), "value": value, "event": event}


@workflow(name="tests.handles.catches")
async def parent_catches_failed_child() -> str:
    handle = await failing_child.start()
    try:
        await handle.result()
    except WorkflowFailed as exc:
        OBSERVED.append(exc.error.message)
        await durable.sleep(0.2)
        return exc.error.message
    return "no failure"


@workflow(name="tests.handles.cancels")
async def parent_cancels_child() -> list[bool]:
    handle = await gated_child.start(7)
    first = await handle.cancel()
    second = await handle.cancel()  # the child is already cancelled: False
    await durable.sleep(0.2)  # the replay must see the recorded True, False again
    return [first, second]


@workflow(name="tests.handles.refused")
async def parent_calls_wait() -> str:
    handle = await gated_child.start(1)
    try:
        await handle.wait(event="seen")
    except RuntimeError as exc:
        await handle.cancel()
        return str(exc)
    return "allowed"


@workflow(name="tests.handles.fan_out")
async def fan_out(n: int) -> list[int]:
    handles = [await gated_child.start(i) for i in range(n)]
    for handle in handles:
        await handle.signal("go")
    return list(await asyncio.gather(*(h.result() for h in handles)))


@workflow(name="tests.handles.bounded")
async def bounded_wait(signal_child: bool) -> str:
    handle = await gated_child.start(9)
    if signal_child:
        await handle.signal("go")
    try:
        value = await handle.result(timeout=3600)
    except TimeoutError as exc:
        OBSERVED.append(str(exc))
        await handle.cancel()
        await durable.sleep(60)  # parks: the replay raises the recorded timeout again
        return "timed out"
    return f"got {value}"


WORKFLOWS = [
    fan_out,
    bounded_wait,
    gated_child,
    failing_child,
    parent_drives_child,
    parent_catches_failed_child,
    parent_cancels_child,
    parent_calls_wait,
]


async def test_a_child_handle_works_inside_the_workflow_and_result_is_a_durable_wait(
    engine: Engine,
) -> None:
    handle = await engine.start(parent_drives_child, 4)
    out = await handle.result(timeout=10)

    assert out["value"] == 40
    assert out["event"] == 4
    assert CALLS[("gated_child", 4)] == 1
    assert len(OBSERVED) >= 2
    assert all(o == OBSERVED[0] for o in OBSERVED)
    detail = await engine.get_run(handle.run_id)
    keys = [s.cursor_key for s in detail.steps]
    assert keys == [
        f"start:{gated_child.name}#0",
        "send:go#0",
        f"status:{gated_child.name}#0",
        f"result:{gated_child.name}#0",
        "get_event:seen#0",
        "sleep#0",
    ]
    result_step = detail.steps[3]
    assert result_step.status == "completed"
    assert result_step.output == 40
    assert detail.attempt >= 3  # parked on the child's result, then on the sleep
    [child_id] = detail.children
    assert (await engine.get_run(child_id)).status == RunStatus.COMPLETED


async def test_a_failed_child_raises_from_its_handle_on_every_replay(engine: Engine) -> None:
    handle = await engine.start(parent_catches_failed_child)
    assert await handle.result(timeout=10) == "child refuses"
    assert OBSERVED == ["child refuses", "child refuses"]
    detail = await engine.get_run(handle.run_id)
    assert detail.steps[1].cursor_key == f"result:{failing_child.name}#0"
    assert detail.steps[1].status == "failed"


async def test_cancel_through_a_child_handle_is_recorded(engine: Engine) -> None:
    handle = await engine.start(parent_cancels_child)
    assert await handle.result(timeout=10) == [True, False]
    [child_id] = (await engine.get_run(handle.run_id)).children
    assert (await engine.get_run(child_id)).status == RunStatus.CANCELLED


async def test_wait_on_a_child_handle_is_refused_inside_a_workflow(engine: Engine) -> None:
    handle = await engine.start(parent_calls_wait)
    message = await handle.result(timeout=10)
    assert "handle.wait()" in message
    assert "not replay-safe" in message


async def test_gather_over_child_handles_returns_every_result_in_order(engine: Engine) -> None:
    handle = await engine.start(fan_out, 4)
    assert await handle.result(timeout=10) == [0, 10, 20, 30]
    detail = await engine.get_run(handle.run_id)
    results = [s.cursor_key for s in detail.steps if s.kind == "result"]
    assert results == [f"result:{gated_child.name}#{i}" for i in range(4)]
    assert all(CALLS[("gated_child", i)] == 1 for i in range(4))


async def test_result_timeout_inside_a_workflow_is_a_durable_deadline(server_dsn: str) -> None:
    async with Environment(server_dsn, workflows=WORKFLOWS) as env:
        late = await env.start(bounded_wait, False)
        await env.run_until_idle()
        assert await late.status() == RunStatus.WAITING
        await env.advance("59m")
        assert await late.status() == RunStatus.WAITING  # its deadline has not come
        await env.advance("2m")
        await env.advance("1m")  # the sleep after the timeout
        assert await late.result(timeout=10) == "timed out"
        assert len(OBSERVED) == 2  # raised on the first execution and again on the replay
        assert OBSERVED[0] == OBSERVED[1]
        assert "did not finish before the timeout" in OBSERVED[0]

        prompt = await env.start(bounded_wait, True)
        assert await prompt.result(timeout=10) == "got 90"
        steps = (await prompt.detail()).steps
        [wait] = [s for s in steps if s.kind == "result"]
        assert wait.status == "completed"
        assert wait.output == 90
