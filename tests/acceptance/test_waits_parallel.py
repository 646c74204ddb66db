"""Parallel calls: gather and task groups over steps and children keep call-order keys,
park after the running branches record, and replay without re-executing anything."""

from __future__ import annotations

import asyncio

import anyio
import pytest

import durable
from durable import Engine, step, workflow
from tests.acceptance.support import CALLS, OBSERVED

pytestmark = pytest.mark.anyio


@step
async def square(x: int) -> int:
    CALLS[("square", x)] += 1
    await anyio.sleep(0.02 * (4 - x))  # later calls finish first
    return x * x


@workflow
async def triple(x: int) -> int:
    CALLS[("triple", x)] += 1
    return 3 * x


@workflow
async def gather_steps_and_a_child() -> list[int]:
    results = await asyncio.gather(square(1), triple(5), square(2), square(3))
    OBSERVED.append(list(results))
    await durable.sleep(0.2)  # parks: the next execution replays the whole gather
    return list(results)


@workflow
async def task_group_of_steps() -> list[int]:
    out = [0, 0, 0]

    async def one(i: int) -> None:
        out[i] = await square(i + 1)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(one, i)
    OBSERVED.append(list(out))
    await durable.sleep(0.2)
    return out


WORKFLOWS = [triple, gather_steps_and_a_child, task_group_of_steps]


async def test_gather_returns_in_order_and_replays_without_re_executing(engine: Engine) -> None:
    handle = await engine.start(gather_steps_and_a_child)
    assert await handle.result(timeout=5) == [1, 15, 4, 9]

    for key in (("square", 1), ("square", 2), ("square", 3), ("triple", 5)):
        assert CALLS[key] == 1, key
    # The gather completed on the execution after the child finished, and again on the
    # replay after the sleep, with the same results both times.
    assert OBSERVED == [[1, 15, 4, 9], [1, 15, 4, 9]]
    detail = await engine.get_run(handle.run_id)
    assert [s.cursor_key for s in detail.steps] == [
        "step:square#0",
        f"child:{triple.name}#0",
        "step:square#1",
        "step:square#2",
        "sleep#0",
    ]
    assert [s.output for s in detail.steps[:4]] == [1, 15, 4, 9]
    assert detail.attempt >= 2  # at least the replay after the sleep
    assert len(detail.children) == 1


async def test_a_task_group_of_steps_keeps_call_order_keys(engine: Engine) -> None:
    handle = await engine.start(task_group_of_steps)
    assert await handle.result(timeout=5) == [1, 4, 9]
    assert OBSERVED == [[1, 4, 9], [1, 4, 9]]
    assert sum(CALLS.values()) == 3
    detail = await engine.get_run(handle.run_id)
    assert [(s.cursor_key, s.output) for s in detail.steps[:3]] == [
        ("step:square#0", 1),
        ("step:square#1", 4),
        ("step:square#2", 9),
    ]
