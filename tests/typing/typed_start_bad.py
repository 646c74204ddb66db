"""Misuses of the typed start: mypy strict must report exactly the errors marked ``# E:``."""

from __future__ import annotations

import durable
from durable import RunHandle


@durable.workflow
async def ship(order_id: str, carrier: str = "post") -> int:
    return len(order_id + carrier)


async def main() -> None:
    opts = ship.options(idempotency_key="k")
    await opts.start(42)  # E: arg-type
    await opts.start("o-1", carier="ups")  # E: call-arg
    await ship.options(priority="high").start("o-1")  # E: arg-type
    await ship.options(queue=3).start("o-1")  # E: arg-type
    await ship.options(retries=3).start("o-1")  # E: call-arg
    wrong: RunHandle[str] = await opts.start("o-1")  # E: assignment
    print(wrong)
