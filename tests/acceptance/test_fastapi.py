"""The FastAPI integration: lifespan, dependency, the start/read router, error mapping,
in-process over ASGI and once through a real uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from durable import Client, Engine, WorkflowFailed, step, workflow
from durable.contrib.fastapi import (
    ClientDep,
    EngineDep,
    durable_exception_handlers,
    durable_lifespan,
    durable_router,
    get_engine,
)
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.web_support import in_process, served

pytestmark = pytest.mark.anyio


@dataclass
class Item:
    sku: str
    quantity: int


@step
async def price(item: Item) -> int:
    return item.quantity * 100


@workflow(name="web_quote")
async def web_quote(item: Item, discount: int = 0) -> dict[str, Any]:
    return {"sku": item.sku, "total": await price(item) - discount}


@workflow(name="web_broken")
async def web_broken(reason: str) -> None:
    raise RuntimeError(f"broken: {reason}")


@workflow(name="web_private")
async def web_private() -> str:
    return "secret"


def _app(engine: Engine, **router_options: Any) -> FastAPI:
    app = FastAPI(
        lifespan=durable_lifespan(engine), exception_handlers=dict(durable_exception_handlers)
    )
    options = {"workflows": [web_quote, "web_broken"], **router_options}
    app.include_router(durable_router(engine, **options), prefix="/durable")

    @app.get("/mine/{run_id}")
    async def mine(run_id: str, engine: EngineDep) -> dict[str, str]:
        return {"status": str((await engine.get_run(run_id)).status)}

    return app


async def test_start_by_name_then_read_the_public_view(make_engine: EngineFactory) -> None:
    engine = make_engine(web_quote, web_broken, web_private)
    async with in_process(_app(engine)) as http:
        body = {"args": [{"sku": "A-1", "quantity": 3}], "kwargs": {"discount": 50},
                "idempotency_key": "quote-1"}  # fmt: skip
        started = await http.post("/durable/runs/web_quote", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert await engine.handle(run_id).result(timeout=10) == {"sku": "A-1", "total": 250}
        again = await http.post("/durable/runs/web_quote", json=body)
        assert (again.status_code, again.json()["run_id"]) == (200, run_id)

        view = (await http.get(f"/durable/runs/{run_id}")).json()
        assert view["status"] == "completed"
        assert view["workflow"] == "web_quote"
        assert view["output"] == {"sku": "A-1", "total": 250}
        assert view["finished_at"] is not None
        assert "input" not in view
        assert (await http.get(f"/mine/{run_id}")).json() == {"status": "completed"}


async def test_errors_map_to_http_statuses(make_engine: EngineFactory) -> None:
    engine = make_engine(web_quote, web_broken, web_private, max_input_bytes=200)
    async with in_process(_app(engine)) as http:
        not_allowed = await http.post("/durable/runs/web_private", json={})
        assert not_allowed.status_code == 404
        assert (await http.post("/durable/runs/nope", json={})).status_code == 404
        bad_type = {"args": [{"sku": "A", "quantity": "many"}]}
        assert (await http.post("/durable/runs/web_quote", json=bad_type)).status_code == 422
        missing = await http.post("/durable/runs/web_quote", json={"args": []})
        assert missing.status_code == 422
        reserved = {"args": [{"sku": "A", "quantity": 1}], "kwargs": {"queue": "x"}}
        assert (await http.post("/durable/runs/web_quote", json=reserved)).status_code == 422
        extra = {"args": [], "unknown_field": 1}
        assert (await http.post("/durable/runs/web_quote", json=extra)).status_code == 422
        huge = {"args": [{"sku": "A" * 500, "quantity": 1}]}
        assert (await http.post("/durable/runs/web_quote", json=huge)).status_code == 413

        unknown = "00000000-0000-4000-8000-000000000000"
        assert (await http.get(f"/durable/runs/{unknown}")).status_code == 404
        assert (await http.get(f"/mine/{unknown}")).status_code == 404  # handler, user route
        private = await engine.start(web_private)
        assert (await http.get(f"/durable/runs/{private.run_id}")).status_code == 404
    assert (await engine_runs(make_engine)) == 1  # only web_private's run was stored


async def engine_runs(make_engine: EngineFactory) -> int:
    async with make_engine(worker=False) as client:
        return len((await client.list_runs()).items)


@pytest.mark.parametrize("expose", [False, True])
async def test_traceback_and_input_only_when_asked(
    make_engine: EngineFactory, expose: bool
) -> None:
    engine = make_engine(web_quote, web_broken)
    app = _app(engine, expose_input=expose, expose_traceback=expose)
    async with in_process(app) as http:
        started = await http.post("/durable/runs/web_broken", json={"args": ["disk"]})
        run_id = started.json()["run_id"]
        with pytest.raises(WorkflowFailed, match="broken: disk"):
            await engine.handle(run_id).result(timeout=10)
        view = (await http.get(f"/durable/runs/{run_id}")).json()
        assert view["status"] == "failed"
        assert view["error"]["type"].endswith("RuntimeError")
        assert "broken: disk" in view["error"]["message"]
        assert ("traceback" in view["error"]) is expose
        assert ("input" in view) is expose


async def test_lifespan_composes_with_the_apps_own(make_engine: EngineFactory) -> None:
    engine = make_engine(web_quote)
    seen: list[str] = []

    @asynccontextmanager
    async def mine(app: FastAPI) -> AsyncIterator[None]:
        seen.append(f"enter:{app.state.durable_engine is engine}")
        yield
        seen.append("exit")

    app = FastAPI(lifespan=durable_lifespan(engine, mine))

    @app.get("/ping")
    async def ping(engine: Annotated[Engine, Depends(get_engine)]) -> dict[str, bool]:
        return {"running": engine.worker is not None}

    async with in_process(app) as http:
        assert (await http.get("/ping")).json() == {"running": True}
    assert seen == ["enter:True", "exit"]
    assert not hasattr(app.state, "durable_engine")


async def test_through_a_real_uvicorn(make_engine: EngineFactory) -> None:
    engine = make_engine(web_quote)
    async with served(_app(engine)) as http:
        started = await http.post("/durable/runs/web_quote",
                                  json={"args": [{"sku": "U", "quantity": 2}]})  # fmt: skip
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        assert await engine.handle(run_id).result(timeout=10) == {"sku": "U", "total": 200}
        view = await http.get(f"/durable/runs/{run_id}")
        assert view.json()["status"] == "completed"


async def test_an_api_only_app_holds_a_plain_client_and_a_worker_runs_elsewhere(
    make_engine: EngineFactory, database_url: str
) -> None:
    """The web process holds a ``Client`` (no worker code runs there); a worker engine
    elsewhere executes what its router and its own endpoints start."""
    client = Client(database_url, workflows=[web_quote])
    app = FastAPI(lifespan=durable_lifespan(client))
    app.include_router(durable_router(client, workflows=[web_quote]), prefix="/durable")

    @app.post("/quote/{sku}")
    async def quote(sku: str, durable: ClientDep) -> dict[str, str]:
        handle = await durable.start(web_quote, Item(sku, 2))
        return {"run_id": str(handle.run_id)}

    @app.get("/engine-only")
    async def engine_only(engine: EngineDep) -> dict[str, str]:
        return {"worker": str(engine.worker)}

    async with make_engine(web_quote), in_process(app) as http:
        mine = (await http.post("/quote/B-2")).json()["run_id"]
        body = {"args": [{"sku": "C-3", "quantity": 1}]}
        routed = (await http.post("/durable/runs/web_quote", json=body)).json()["run_id"]
        assert await client.handle(mine).result(timeout=10) == {"sku": "B-2", "total": 200}
        assert await client.handle(routed).result(timeout=10) == {"sku": "C-3", "total": 100}
        assert (await http.get(f"/durable/runs/{routed}")).json()["status"] == "completed"
        with pytest.raises(RuntimeError, match="a Client, not an Engine"):
            await http.get("/engine-only")
