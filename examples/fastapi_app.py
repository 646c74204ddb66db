"""A checkout service on FastAPI: start an order, take the payment provider's signed
webhook as a signal, read the order's status.

    uv run python examples/fastapi_app.py          # serves http://127.0.0.1:8000 ($PORT)

    curl -X POST localhost:8000/orders/order-42 -H 'content-type: application/json' \\
         -d '{"amount": 1200}'
    # the payment provider then POSTs its signed webhook (Standard Webhooks) to
    #   /durable/workflows/shop.checkout/signals/payment?key=order-42
    curl localhost:8000/durable/runs/<run_id>

The database is ``DURABLE_DATABASE_URL`` (or an embedded PostgreSQL); the webhook secret is
``CHECKOUT_WEBHOOK_SECRET`` (a ``whsec_`` base64 secret shared with the provider).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastapi import FastAPI
from pydantic import BaseModel

import durable
from durable import Engine, step, workflow
from durable.contrib.fastapi import (
    EngineDep,
    durable_exception_handlers,
    durable_lifespan,
    durable_router,
)

DEMO_SECRET = "whsec_ZGVtby1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u"  # demo only


@dataclass
class Payment:
    """What the payment provider's webhook says."""

    status: str
    amount: int


class OrderRequest(BaseModel):
    """The body of ``POST /orders/{order_id}``."""

    amount: int


@step
async def reserve_stock(order_id: str) -> str:
    return f"reservation-{order_id}"


@step
async def ship(order_id: str) -> str:
    return f"shipment-{order_id}"


@workflow(name="shop.checkout")  # a dotted name: unique among the apps sharing a database
async def checkout(order_id: str, amount: int) -> dict[str, str]:
    """Reserve stock, wait up to a day for the payment webhook, then ship."""
    reservation = await reserve_stock(order_id)
    try:
        payment = await durable.wait_for_signal("payment", timeout="1d", type=Payment)
    except durable.SignalTimeout:
        return {"order": order_id, "result": "payment timed out", "reservation": reservation}
    if payment.status != "paid" or payment.amount != amount:
        return {"order": order_id, "result": "payment refused", "reservation": reservation}
    return {"order": order_id, "result": "shipped", "shipment": await ship(order_id)}


def create_app(engine: Engine, webhook_secret: str = DEMO_SECRET) -> FastAPI:
    """The service: ``/orders`` for the shop, ``/durable`` for webhooks and run status."""
    app = FastAPI(
        lifespan=durable_lifespan(engine), exception_handlers=dict(durable_exception_handlers)
    )
    app.include_router(
        durable_router(engine, workflows=[checkout], webhook_secrets=[webhook_secret]),
        prefix="/durable",
    )

    @app.post("/orders/{order_id}", status_code=202)
    async def place_order(order_id: str, order: OrderRequest, engine: EngineDep) -> dict[str, str]:
        handle = await engine.start(checkout, order_id, order.amount, idempotency_key=order_id)
        return {"run_id": str(handle.run_id), "status": f"/durable/runs/{handle.run_id}"}

    return app


def main() -> None:
    """Serve the app with uvicorn on 127.0.0.1 (port ``PORT``, default 8000; one process,
    the worker inside it)."""
    import uvicorn

    engine = Engine(workflows=[checkout])
    secret = os.environ.get("CHECKOUT_WEBHOOK_SECRET", DEMO_SECRET)
    port = int(os.environ.get("PORT", "8000"))
    uvicorn.run(create_app(engine, secret), host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
