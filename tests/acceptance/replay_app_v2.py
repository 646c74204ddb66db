"""Version 2 of ``replay_app_v1``: the same workflow with its two steps swapped, which no
run recorded by version 1 can replay (``NonDeterminismError`` at ``step:replay_app.reserve#0``).
Only ever imported by a ``durable replay --app`` subprocess."""

from __future__ import annotations

import durable
from durable import Engine, step, workflow


@step(name="replay_app.reserve")
async def reserve(item: str) -> str:
    return f"reserved {item}"


@step(name="replay_app.charge")
async def charge(item: str) -> int:
    return 42


@workflow(name="tests.replay_app.order")
async def order(item: str, wait: float = 0.0) -> str:
    charged = await charge(item)  # swapped: v1 reserved first
    reserved = await reserve(item)
    await durable.sleep(wait)
    return f"{reserved}, charged {charged}"


WORKFLOWS = [order]

engine = Engine(workflows=WORKFLOWS)
