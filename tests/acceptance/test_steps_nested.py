"""Inside a step's body: another step is a plain call, and a durable wait is refused at once.

A step is one recorded unit. A step it calls is part of that unit (no record, no cursor
key), so replaying the outer record cannot shift positions. Sleeps, signal waits, child
runs, ``set_event`` and ``patched`` inside a step raise ``DurableCallInStep`` at the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import durable
from durable import DurableCallInStep, Engine, step, workflow
from tests.acceptance import support
from tests.acceptance.support import CALLS, OBSERVED

pytestmark = pytest.mark.anyio


@step(name="tests.nested.inner")
async def inner(x: int) -> int:
    CALLS["inner"] += 1
    return x + 1


@step(name="tests.nested.outer")
async def outer(x: int) -> int:
    CALLS["outer"] += 1
    return await inner(x) * 2


@workflow(name="tests.nested.flow")
async def nested_flow(x: int) -> int:
    a = await outer(x)
    await support.park_once()  # the replay returns outer's record without running its body
    b = await inner(x)
    return a + b


@workflow(name="tests.nested.child")
async def a_child() -> str:
    return "child"


async def _sleep() -> Any:
    return await durable.sleep(1)


async def _signal() -> Any:
    return await durable.wait_for_signal("go")


async def _event() -> Any:
    return await durable.set_event("k", 1)


async def _child() -> Any:
    return await a_child()


async def _start() -> Any:
    return await a_child.start()


async def _patched() -> Any:
    return durable.patched("p")


FORBIDDEN: dict[str, Callable[[], Awaitable[Any]]] = {
    "sleep": _sleep,
    "signal": _signal,
    "event": _event,
    "child": _child,
    "start": _start,
    "patched": _patched,
}


@step(name="tests.nested.forbidden", retries=2, initial_interval=0.01, max_interval=0.01)
async def does_forbidden(what: str) -> str:
    CALLS[("forbidden", what)] += 1
    await FORBIDDEN[what]()
    return "allowed"


@step(name="tests.nested.plain_values")
async def plain_values() -> list[str]:
    return [durable.now().isoformat(), str(durable.uuid4()), str(durable.random())]


@workflow(name="tests.nested.refused")
async def refused(what: str) -> dict[str, str]:
    try:
        await does_forbidden(what)
    except DurableCallInStep as exc:
        return {"code": exc.code, "message": str(exc)}
    return {}


@workflow(name="tests.nested.values")
async def values_in_step() -> list[str]:
    got = await plain_values()
    OBSERVED.append(got)
    return got


WORKFLOWS = [nested_flow, a_child, refused, values_in_step]


async def test_a_step_inside_a_step_is_part_of_its_caller(engine: Engine) -> None:
    handle = await engine.start(nested_flow, 1)
    assert await handle.result(timeout=10) == 6
    detail = await engine.get_run(handle.run_id)
    assert [s.cursor_key for s in detail.steps] == [
        "step:tests.nested.outer#0",
        "step:park_once#0",
        "step:tests.nested.inner#0",
    ]
    assert detail.attempt >= 2  # the replay after park_once met no NonDeterminismError
    assert CALLS["outer"] == 1
    assert CALLS["inner"] == 2  # once inside outer, once as the workflow's own step


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
async def test_a_durable_call_inside_a_step_fails_at_once(engine: Engine, what: str) -> None:
    handle = await engine.start(refused, what)
    out = await handle.result(timeout=10)
    assert out["code"] == "durable_call_in_step"
    assert "tests.nested.forbidden" in out["message"]
    assert CALLS[("forbidden", what)] == 1  # not retried: it can never succeed
    detail = await engine.get_run(handle.run_id)
    assert [s.cursor_key for s in detail.steps] == ["step:tests.nested.forbidden#0"]
    assert not detail.children


async def test_now_uuid4_random_inside_a_step_are_plain_values(engine: Engine) -> None:
    handle = await engine.start(values_in_step)
    got = await handle.result(timeout=10)
    assert len(got) == 3
    detail = await engine.get_run(handle.run_id)
    assert [s.cursor_key for s in detail.steps] == ["step:tests.nested.plain_values#0"]
