"""FastAPI (and Starlette) integration: the engine's lifespan, a dependency, and a router.

::

    from fastapi import Depends, FastAPI
    from durable import Engine
    from durable.contrib.fastapi import durable_lifespan, durable_router, get_engine

    engine = Engine()                       # or Client() for API-only processes
    app = FastAPI(lifespan=durable_lifespan(engine))
    app.include_router(durable_router(engine, workflows=[checkout]), prefix="/durable")

    @app.post("/orders/{order_id}")
    async def order(order_id: str, engine: Engine = Depends(get_engine)):
        handle = await engine.start(checkout, order_id, idempotency_key=order_id)
        return {"run_id": str(handle.run_id)}

An API-only process that holds a plain ``Client`` (its workers run elsewhere) passes it to
the same lifespan and router, and takes it with ``get_client`` / ``ClientDep``.

Needs the ``durable-sdk[fastapi]`` extra. See ``docs/web-frameworks.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from durable._client.client import Client
from durable._engine import Engine
from durable._foundation.views import RunDetail
from durable._workflow.decorators import Workflow
from durable.contrib.webhooks import (
    WebhookOutcome,
    WebhookRejected,
    WebhookVerifier,
    deliver_verified,
)
from durable.errors import PayloadTooLarge, RunNotFound, SerializationError, UnknownWorkflow

__all__ = [
    "ClientDep",
    "EngineDep",
    "StartRequest",
    "durable_exception_handlers",
    "durable_lifespan",
    "durable_router",
    "get_client",
    "get_engine",
    "public_run_view",
]

STATE_KEY = "durable_engine"
Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
# Keyword parameters of Engine.start: a workflow kwarg with one of these names would be
# taken as a start option, so the router refuses it.
_START_OPTIONS = frozenset(
    name
    for name, param in inspect.signature(Engine.start).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
)


def durable_lifespan(engine: Client, lifespan: Lifespan | None = None) -> Lifespan:
    """A lifespan for ``FastAPI(lifespan=...)`` (or Starlette) that enters ``engine`` (an
    ``Engine``, or a plain ``Client`` in an API-only process) on startup, puts it on
    ``app.state`` for ``get_engine`` / ``get_client``, then runs the app's own ``lifespan``
    inside it (whatever that yields is passed on), and closes it, worker included, on
    shutdown."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        async with engine:
            app.state.durable_engine = engine
            try:
                if lifespan is None:
                    yield None
                else:
                    async with lifespan(app) as state:
                        yield state
            finally:
                del app.state.durable_engine

    return run


def get_client(request: Request) -> Client:
    """The ``Client`` or ``Engine`` entered by ``durable_lifespan`` (a FastAPI dependency:
    ``durable: Client = Depends(get_client)``)."""
    client = getattr(request.app.state, STATE_KEY, None)
    if isinstance(client, Client):
        return client
    raise RuntimeError(
        "no durable client on app.state: use FastAPI(lifespan=durable_lifespan(engine))"
    )


def get_engine(request: Request) -> Engine:
    """The engine entered by ``durable_lifespan`` (a FastAPI dependency:
    ``engine: Engine = Depends(get_engine)``); ``get_client`` also takes a plain Client."""
    engine = get_client(request)
    if isinstance(engine, Engine):
        return engine
    raise RuntimeError(
        "durable_lifespan entered a Client, not an Engine: use get_client (ClientDep)"
    )


ClientDep = Annotated[Client, Depends(get_client)]
"""``durable: ClientDep`` in an endpoint's parameters is the running client or engine."""

EngineDep = Annotated[Engine, Depends(get_engine)]
"""``engine: EngineDep`` in an endpoint's parameters is the running engine."""


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    code = exc.code if isinstance(exc, RunNotFound | UnknownWorkflow) else "not_found"
    return _error(404, code, "not found")


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return _error(413, PayloadTooLarge.code, str(exc))


async def _unencodable(request: Request, exc: Exception) -> JSONResponse:
    return _error(422, SerializationError.code, str(exc))


durable_exception_handlers: Mapping[type[Exception], Callable[..., Any]] = {
    RunNotFound: _not_found,
    UnknownWorkflow: _not_found,
    PayloadTooLarge: _too_large,
    SerializationError: _unencodable,
}
"""``FastAPI(exception_handlers=dict(durable_exception_handlers))`` answers durable's
errors raised by your own endpoints: ``RunNotFound``/``UnknownWorkflow`` 404,
``PayloadTooLarge`` 413, ``SerializationError`` 422."""


class StartRequest(BaseModel):
    """The body of ``POST /runs/{workflow}``."""

    model_config = ConfigDict(extra="forbid")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None


def public_run_view(
    run: RunDetail, *, expose_input: bool = False, expose_traceback: bool = False
) -> dict[str, Any]:
    """A run as JSON safe to show a caller: status, workflow, timing, output and the
    error's type, code and message; the input and the traceback only when asked."""
    view: dict[str, Any] = {
        "run_id": str(run.run_id),
        "workflow": run.workflow,
        "status": str(run.status),
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "output": run.output,
        "error": None,
    }
    if run.error is not None:
        view["error"] = {
            "type": run.error.type,
            "code": run.error.code,
            "message": run.error.message,
        }
        if expose_traceback:
            view["error"]["traceback"] = run.error.traceback
    if expose_input:
        view["input"] = run.input
    return view


def durable_router(
    engine: Client,
    *,
    expose_input: bool = False,
    expose_traceback: bool = False,
    workflows: Iterable[Workflow[..., Any] | str] | None = None,
    webhook_secrets: Iterable[str | bytes] = (),
) -> APIRouter:
    """Routes over ``engine`` (an ``Engine`` or a plain ``Client``): ``POST
    /runs/{workflow}`` starts a run of an allowed workflow (body ``{"args": [...],
    "kwargs": {...}, "idempotency_key": ...}``), ``GET /runs/{run_id}`` reads a run
    (``public_run_view``), and, with ``webhook_secrets``, signed webhooks become signals:
    ``POST /runs/{run_id}/signals/{name}`` and ``POST
    /workflows/{workflow}/signals/{name}?key=<idempotency key>`` (see
    ``durable.contrib.webhooks``).

    ``workflows`` is the allow-list: only these can be started by name, and when given,
    only their runs can be read or signalled (others are 404). With ``workflows=None``
    nothing can be started and every run can be read by its id.
    """
    listed = [] if workflows is None else list(workflows)
    allowed = None if workflows is None else {_name(wf) for wf in listed}
    objects = {wf.name: wf for wf in listed if isinstance(wf, Workflow)}
    verifier = WebhookVerifier(*webhook_secrets) if webhook_secrets else None
    router = APIRouter()
    # A JSON body re-encoded for storage is rarely much larger than sent: twice the signal
    # limit leaves room for whitespace and escapes; the engine checks the exact size.
    body_limit = 2 * engine.settings.max_signal_bytes + 1024

    async def visible(run_id: UUID) -> RunDetail | None:
        try:
            run = await engine.get_run(run_id)
        except RunNotFound:
            return None
        return run if allowed is None or run.workflow in allowed else None

    @router.post("/runs/{workflow}", name="durable_start_run")
    async def start_run(workflow: str, body: StartRequest) -> JSONResponse:
        if allowed is None or workflow not in allowed:
            return _error(404, UnknownWorkflow.code, "unknown workflow")
        clash = sorted(_START_OPTIONS & body.kwargs.keys())
        if clash:
            return _error(422, "invalid_input", f"reserved argument names: {clash}")
        try:
            target = objects.get(workflow) or engine.registry.get(workflow)
            if target is not None:
                args, kwargs = target.signature.decode_args(
                    body.model_dump(include={"args", "kwargs"})
                )
            else:
                args, kwargs = tuple(body.args), dict(body.kwargs)
            handle = await engine.start(
                target or workflow, *args, idempotency_key=body.idempotency_key, **kwargs
            )
        except UnknownWorkflow:
            return _error(404, UnknownWorkflow.code, "unknown workflow")
        except PayloadTooLarge as exc:
            return _error(413, exc.code, str(exc))
        except (SerializationError, ValueError, TypeError) as exc:
            return _error(422, "invalid_input", str(exc))
        answer = {"run_id": str(handle.run_id), "workflow": workflow, "created": handle.created}
        return JSONResponse(answer, status_code=202 if handle.created else 200)

    @router.get("/runs/{run_id}", name="durable_get_run")
    async def get_run(run_id: UUID) -> JSONResponse:
        run = await visible(run_id)
        if run is None:
            return _error(404, RunNotFound.code, "run not found")
        view = public_run_view(run, expose_input=expose_input, expose_traceback=expose_traceback)
        return JSONResponse(view)

    if verifier is None:
        return router

    async def receive(request: Request, **target: Any) -> JSONResponse:
        assert verifier is not None
        if _declared_length(request) > body_limit:  # refuse before reading it into memory
            return JSONResponse({"error": "the payload is too large"}, status_code=413)
        try:  # verify before anything else: an unsigned caller learns nothing about runs
            verified = verifier.verify(await request.body(), request.headers)
        except WebhookRejected as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status_code)
        run_id, workflow = target.get("run_id"), target.get("workflow")
        hidden = False
        if allowed is not None:
            hidden = (
                await visible(run_id) is None if run_id is not None else workflow not in allowed
            )
        if hidden:
            outcome = WebhookOutcome(404, {"kind": "run_not_found"})
        else:
            outcome = await deliver_verified(engine, verified, **target)
        return JSONResponse(outcome.body, status_code=outcome.status_code)

    @router.post("/runs/{run_id}/signals/{name}", name="durable_signal_run")
    async def signal_run(run_id: UUID, name: str, request: Request) -> JSONResponse:
        return await receive(request, name=name, run_id=run_id)

    @router.post("/workflows/{workflow}/signals/{name}", name="durable_signal_by_key")
    async def signal_by_key(
        workflow: str, name: str, request: Request, key: Annotated[str, Query(min_length=1)]
    ) -> JSONResponse:
        return await receive(request, name=name, workflow=workflow, idempotency_key=key)

    return router


def _declared_length(request: Request) -> int:
    try:
        return int(request.headers.get("content-length", "0"))
    except ValueError:
        return 0


def _name(workflow: Workflow[..., Any] | str) -> str:
    return workflow if isinstance(workflow, str) else workflow.name
