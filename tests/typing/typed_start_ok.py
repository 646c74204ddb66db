"""The typed start, as users write it: mypy strict must accept every line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

import durable
from durable import Engine, RunHandle, WorkflowOptions


@dataclass
class Order:
    id: str
    total: int


@durable.workflow
async def checkout(order: Order, *, express: bool = False) -> str:
    return f"{order.id}:{order.total}:{express}"


@durable.workflow
async def ship(order_id: str, carrier: str = "post") -> int:
    return len(order_id + carrier)


async def main() -> None:
    flows = [checkout, ship]  # different signatures, no annotation
    async with Engine(workflows=flows) as engine:
        plain: RunHandle[str] = await checkout.start(Order("o-1", 42))
        keyed = checkout.options(idempotency_key="order-42", tags=["tenant:acme"])
        handle: RunHandle[str] = await keyed.start(Order("o-1", 42), express=True)
        again: RunHandle[str] = await keyed.options(priority=5).start(Order("o-2", 1))
        later: WorkflowOptions[..., int] = ship.options(
            delay=timedelta(hours=1), queue="slow", concurrency_key="acme", timeout="1h",
            resource_id="acme", metadata={"source": "web"}, run_id=uuid4(),
        )  # fmt: skip
        shipped: int = await (await later.start("o-1", carrier="ups")).result()
        text: str = await handle.result()
        print(plain.run_id, again.run_id, shipped, text, engine)
    async with Engine(workflows=[checkout, ship], worker=False):
        pass
