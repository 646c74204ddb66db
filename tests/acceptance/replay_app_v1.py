"""Version 1 of an app for ``durable replay --app`` in the replay tests: reserve, then charge.

``replay_app_v2`` is the same app with the two steps swapped: an incompatible change for
every run that recorded them. The two modules are never imported by the same process (the
workflow name is the same), so v2 is only ever loaded by a ``durable replay`` subprocess.
"""

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
    reserved = await reserve(item)
    charged = await charge(item)
    await durable.sleep(wait)  # a long wait parks the run: its history ends here
    return f"{reserved}, charged {charged}"


WORKFLOWS = [order]

engine = Engine(workflows=WORKFLOWS)
