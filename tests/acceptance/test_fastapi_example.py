"""examples/fastapi_app.py: the checkout service, in-process over ASGI and as the script
itself (``python examples/fastapi_app.py``) on a free port, against real Postgres."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import anyio
import anyio.abc
import httpx
import pytest

from tests.acceptance.conftest import EngineFactory
from tests.acceptance.dashboard_support import free_port
from tests.acceptance.web_support import in_process, signed

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"


def _load() -> ModuleType:
    name = "durable_examples_fastapi_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the Payment type is resolved by module name
    spec.loader.exec_module(module)
    return module


shop = _load()


async def test_order_paid_by_webhook_ships(make_engine: EngineFactory) -> None:
    engine = make_engine(shop.checkout)
    async with in_process(shop.create_app(engine)) as http:
        placed = await http.post("/orders/order-42", json={"amount": 1200})
        assert placed.status_code == 202
        run_id = placed.json()["run_id"]
        body, headers = signed({"status": "paid", "amount": 1200}, secret=shop.DEMO_SECRET)
        hook = await http.post(
            "/durable/workflows/shop.checkout/signals/payment?key=order-42",
            content=body, headers=headers,
        )  # fmt: skip
        assert hook.status_code == 202, hook.text
        result = await engine.handle(run_id).result(timeout=10)
        assert result == {"order": "order-42", "result": "shipped", "shipment": "shipment-order-42"}
        status = (await http.get(placed.json()["status"])).json()
        assert status["status"] == "completed"
        assert "input" not in status

        again = await http.post("/orders/order-42", json={"amount": 1200})
        assert again.json()["run_id"] == run_id  # the order id is the idempotency key


async def test_a_wrong_amount_is_refused(make_engine: EngineFactory) -> None:
    engine = make_engine(shop.checkout)
    async with in_process(shop.create_app(engine)) as http:
        run_id = (await http.post("/orders/order-7", json={"amount": 500})).json()["run_id"]
        body, headers = signed({"status": "paid", "amount": 1}, secret=shop.DEMO_SECRET)
        url = "/durable/workflows/shop.checkout/signals/payment?key=order-7"
        assert (await http.post(url, content=body, headers=headers)).status_code == 202
        assert (await engine.handle(run_id).result(timeout=10))["result"] == "payment refused"


async def test_the_script_serves_the_app(database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DURABLE_DATABASE_URL": database_url, "PORT": str(port)}
    process = await anyio.open_process([sys.executable, str(EXAMPLE)], env=env, stdout=None)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            with anyio.fail_after(60):  # a hang guard, not a speed check
                answer = await _first_answer(process, http)
                assert answer.status_code == 202
                body, headers = signed({"status": "paid", "amount": 100}, secret=shop.DEMO_SECRET)
                url = "/durable/workflows/shop.checkout/signals/payment?key=order-9"
                assert (await http.post(url, content=body, headers=headers)).status_code == 202
                status_url = answer.json()["status"]
                await _until_completed(http, status_url)
    finally:
        process.terminate()
        with anyio.fail_after(30):
            await process.wait()


async def _first_answer(process: anyio.abc.Process, http: httpx.AsyncClient) -> httpx.Response:
    """Place an order as soon as the script's server accepts connections."""
    while True:
        assert process.returncode is None, "the example exited"
        try:
            return await http.post("/orders/order-9", json={"amount": 100})
        except httpx.TransportError:
            await anyio.sleep(0.05)


async def _until_completed(http: httpx.AsyncClient, url: str) -> None:
    """Poll the public run view until the run completed."""
    while True:
        if (await http.get(url)).json()["status"] == "completed":
            return
        await anyio.sleep(0.05)
