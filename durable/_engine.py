"""``Engine``: connects to Postgres, migrates, runs the worker, starts and inspects runs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload
from uuid import UUID

import anyio
import asyncpg
from anyio.abc import TaskGroup

from durable._client.addressing import signal_run
from durable._client.handles import RunHandle
from durable._client.housekeeping import EngineHousekeeping
from durable._client.management import EngineOperations
from durable._client.queues import Queues
from durable._client.reads import EngineReads
from durable._client.schedules import Scheduler
from durable._foundation.codec import encode_start_input
from durable._foundation.dsn import redact, scrub
from durable._foundation.limits import check_payload
from durable._foundation.telemetry import Telemetry
from durable._foundation.validate import (
    check_delay,
    check_name,
    check_optional_key,
    check_priority,
    check_run_id,
    check_tags,
    names,
    real,
    seconds,
    seconds_or_none,
    whole,
)
from durable._runs.operations import cancel_run
from durable._runs.registry import Registry, default_registry
from durable._runs.runtime import Runtime, Settings
from durable._runs.scoping import (
    check_resource_id,
    encode_metadata,
    require_in_resource,
)
from durable._store.embedded import EmbeddedPostgres, resolve_database_url
from durable._store.listener import Listener
from durable._store.migrations import migrate
from durable._store.pool import ConnectionPool
from durable._store.store import Store
from durable._worker.poller import Worker
from durable._workflow.decorators import Workflow, check_retries
from durable._workflow.signals import SignalDelivery
from durable.errors import UnknownWorkflow

__all__ = ["Engine", "running_engine"]

R = TypeVar("R")
Duration = float | int | timedelta | str
_log = logging.getLogger("durable")
_running: list[Engine] = []


def running_engine() -> Engine:
    """The most recently entered engine that is still running."""
    if not _running:
        raise RuntimeError(
            "no durable Engine is running: start runs inside `async with Engine() as engine:`"
        )
    return _running[-1]


class Engine(EngineOperations, EngineReads, EngineHousekeeping):
    """The entry point: a connection to Postgres, a worker, and operations on runs.

    ``database_url=None`` reads ``DURABLE_DATABASE_URL``, then ``DATABASE_URL``; with
    neither set it starts an embedded PostgreSQL in ``data_dir`` (default ``./.durable``).
    Entering the engine connects, applies migrations and, with ``worker=True``, starts
    the built-in poller for the registered workflows (all of them, or ``workflows=``).
    ``max_input_bytes``/``max_output_bytes``/``max_signal_bytes`` cap encoded payloads
    (``PayloadTooLarge``); ``retention`` (a duration) prunes older finished runs.
    ``default_workflow_timeout`` bounds runs whose workflow and start set no timeout;
    ``default_step_timeout``/``default_step_retries`` apply to steps that set no
    ``timeout``/``retries`` in workflows that set no ``step_timeout``/``step_retries``.
    ``max_run_attempts`` (10) fails a poison run with ``RunAttemptsExhausted`` once that
    many executions in a row lost their lease before recording or parking anything.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        concurrency: int = 16,
        workflows: Iterable[Workflow[Any, Any]] | None = None,
        worker: bool = True,
        queues: Sequence[str] | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        log_during_replay: bool = False,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float | None = None,
        poll_interval: float = 5.0,
        inline_wait_seconds: float = 5.0,
        shutdown_grace_seconds: float = 30.0,
        max_child_depth: int = 8,
        max_children_per_run: int = 1000,
        data_dir: str | Path | None = None,
        pool_size: int | None = None,
        max_input_bytes: int = 1 << 20,
        max_output_bytes: int = 1 << 20,
        max_signal_bytes: int = 256 << 10,
        retention: Duration | None = None,
        default_workflow_timeout: Duration | None = None,
        default_step_timeout: Duration | None = None,
        default_step_retries: int = 0,
        max_run_attempts: int = 10,
    ) -> None:
        self.registry = default_registry if workflows is None else Registry(workflows)
        lease_seconds = real("lease_seconds", lease_seconds, above=True)
        self.settings = Settings(
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            heartbeat_seconds=lease_seconds / 3 if heartbeat_seconds is None else heartbeat_seconds,
            poll_interval=poll_interval,
            inline_wait_seconds=inline_wait_seconds,
            shutdown_grace_seconds=shutdown_grace_seconds,
            queues=_queues_of(self.registry) if queues is None else names("queues", queues),
            max_child_depth=max_child_depth,
            max_children_per_run=max_children_per_run,
            max_input_bytes=max_input_bytes,
            max_output_bytes=max_output_bytes,
            max_signal_bytes=max_signal_bytes,
            retention_seconds=None if retention is None else seconds("retention", retention),
            default_workflow_timeout=seconds_or_none(
                "default_workflow_timeout", default_workflow_timeout
            ),
            default_step_timeout=seconds_or_none("default_step_timeout", default_step_timeout),
            default_step_retries=check_retries(default_step_retries, "default_step_retries"),
            max_run_attempts=max_run_attempts,
        )
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.telemetry = Telemetry(
            tracer_provider, meter_provider, log_during_replay=log_during_replay
        )
        self._database_url = database_url
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._want_worker = worker
        self._pool_size = (
            min(max(4, self.settings.concurrency // 2 + 2), 20)
            if pool_size is None
            else whole("pool_size", pool_size, low=1)
        )
        self._embedded: EmbeddedPostgres | None = None
        self._pool: ConnectionPool | None = None
        self._tg: TaskGroup | None = None
        self._runtime: Runtime | None = None
        self.worker: Worker | None = None
        self.scheduler: Scheduler | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        try:
            await self._open()
        except BaseException:
            await self._close()
            raise
        _running.append(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self in _running:
            _running.remove(self)
        await self._close()

    async def _open(self) -> None:
        url = resolve_database_url(self._database_url)
        if url is None:
            self._embedded = EmbeddedPostgres()
            url = await self._embedded.start(self._data_dir)
        self._pool = ConnectionPool(lambda: asyncpg.connect(url), max_size=self._pool_size)
        try:
            await self._pool.open()
        except ValueError as exc:  # a malformed URL: the driver may quote pieces of it
            message = f"invalid database URL {redact(url)}: {scrub(str(exc), url)}"
            raise ValueError(message) from None
        async with self._pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            _log.info("applied durable migrations %s", applied)
        listener = Listener(lambda: asyncpg.connect(url))
        await listener.start()
        runtime = Runtime(
            Store(self._pool), self.settings, self.registry, listener, telemetry=self.telemetry
        )
        runtime.engine = self  # handles made inside workflows (child starts) act through it
        self._runtime = runtime
        await runtime.sync_clock()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(listener.run)
        if self._want_worker:
            self.worker = Worker(runtime)
            listener.on_wake(self.worker.wake)
            listener.on_run(self.worker.on_run)
            await self.worker.register()
            self._tg.start_soon(self.worker.run, self._tg)
            self.scheduler = Scheduler(runtime)
            listener.on_wake(self.scheduler.wake)
            await self.scheduler.register()
            self._tg.start_soon(self.scheduler.run)
        _log.info(
            "durable engine started on %s (worker=%s, workflows=%d)",
            redact(url),
            self._want_worker,
            len(self.registry),
        )

    async def _close(self) -> None:
        with anyio.CancelScope(shield=True):
            if self.worker is not None:
                await self.worker.stop()
            if self._runtime is not None:
                await self._runtime.writer.close()
                await self._runtime.listener.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None
        with anyio.CancelScope(shield=True):
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
            if self._embedded is not None:
                await self._embedded.stop()
                self._embedded = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the engine is not running: use `async with Engine() as engine:`")
        return self._runtime

    # -- starting runs ---------------------------------------------------------------------

    @overload
    async def start(
        self,
        workflow: Workflow[..., R],
        /,
        *args: Any,
        idempotency_key: str | None = None,
        tags: Sequence[str] = (),
        run_id: UUID | None = None,
        delay: Duration | None = None,
        queue: str | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        timeout: Duration | None = None,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]: ...
    @overload
    async def start(
        self,
        workflow: str,
        /,
        *args: Any,
        idempotency_key: str | None = None,
        tags: Sequence[str] = (),
        run_id: UUID | None = None,
        delay: Duration | None = None,
        queue: str | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        timeout: Duration | None = None,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RunHandle[Any]: ...
    async def start(
        self,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        idempotency_key: str | None = None,
        tags: Sequence[str] = (),
        run_id: UUID | None = None,
        delay: Duration | None = None,
        queue: str | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        timeout: Duration | None = None,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RunHandle[Any]:
        """Start a run of ``workflow`` (an object or a registered name) and return its handle.

        The run is stored and the workers are woken in one transaction. With an
        ``idempotency_key``, a repeat start of the same workflow returns the first run.
        ``priority`` orders due runs (higher first); runs sharing a ``concurrency_key`` in a
        queue run at most ``key_concurrency`` at a time (see ``engine.queues``).
        Arguments are encoded by the workflow's type hints; a value that cannot be encoded
        raises ``SerializationError`` and stores nothing. ``resource_id`` scopes the run to a
        tenant or user (calls scoped to another resource never see it) and ``metadata`` is a
        small JSON object (4 KiB encoded at most) shown with the run. ``timeout`` bounds this run's
        total time (default: the workflow's ``timeout``, then the engine's
        ``default_workflow_timeout``); past it the run fails with ``WorkflowTimeout``.
        """
        limit = seconds_or_none("timeout", timeout)
        scope = check_resource_id(resource_id)
        metadata_json = encode_metadata(metadata)
        wf, name, version, default_queue, workflow_timeout = await self._resolve(workflow)
        return await self._start_run(
            wf,
            name,
            version,
            args,
            kwargs,
            by_name=isinstance(workflow, str),
            workflow_timeout=workflow_timeout,
            idempotency_key=idempotency_key,
            tags=tags,
            run_id=run_id,
            delay=delay,
            queue=queue or default_queue,
            priority=priority,
            concurrency_key=concurrency_key,
            timeout=limit,
            resource_id=scope,
            metadata_json=metadata_json,
        )

    async def _start_run(
        self,
        wf: Workflow[..., Any] | None,
        name: str,
        version: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        by_name: bool = False,
        workflow_timeout: float | None = None,
        idempotency_key: str | None = None,
        tags: Sequence[str] = (),
        run_id: UUID | None = None,
        delay: Duration | None = None,
        queue: str,
        priority: int = 0,
        concurrency_key: str | None = None,
        timeout: float | None = None,
        resource_id: str | None = None,
        metadata_json: str | None = None,
    ) -> RunHandle[Any]:
        check_name("workflow", name)
        run_id = uuid.uuid4() if run_id is None else check_run_id("run_id", run_id)
        idempotency_key = check_optional_key("idempotency_key", idempotency_key)
        concurrency_key = check_optional_key("concurrency_key", concurrency_key)
        queue, priority = check_name("queue", queue), check_priority(priority)
        tags, delay_seconds = check_tags(tags), check_delay(delay)
        if concurrency_key is not None:
            await self.runtime.store.ensure_queue(queue)
        with self.runtime.telemetry.start_workflow(name, version, queue, run_id) as started:
            signature = None if wf is None else wf.signature
            input_json = encode_start_input(signature, args, kwargs, by_name=by_name)
            limit = self.runtime.settings.max_input_bytes
            check_payload(f"the input of workflow {name!r}", input_json, limit)
            # Listen before the run exists, so result() can wait for its NOTIFY without
            # reading the row first (the run may finish before start() returns).
            listener = self.runtime.listener
            news = listener.subscribe(run_id) if listener.connected else None
            new_id, created = await self.runtime.store.insert_run(
                run_id=run_id,
                workflow=name,
                version=version,
                input_json=input_json,
                queue=queue,
                priority=priority,
                tags=tags,
                idempotency_key=idempotency_key,
                parent_run_id=None,
                parent_cursor=None,
                delay_seconds=delay_seconds,
                timeout_seconds=self.runtime.settings.run_timeout(
                    timeout, wf.timeout if wf is not None else workflow_timeout
                ),
                traceparent=started.traceparent,
                tracestate=started.tracestate,
                concurrency_key=concurrency_key,
                resource_id=resource_id,
                metadata_json=metadata_json,
            )
            started.stored(new_id, created)
        # By name, the result is plain JSON too, whether or not this process has the code.
        handle = RunHandle(
            self, new_id, None if by_name else wf, created=created, resource_id=resource_id
        )
        if created and new_id == run_id:
            handle._news = news
        return handle

    async def _resolve(
        self, workflow: Workflow[..., Any] | str
    ) -> tuple[Workflow[..., Any] | None, str, int, str, float | None]:
        """(code if known here, name, version, queue, timeout) of a workflow or its name."""
        if isinstance(workflow, Workflow):
            return workflow, workflow.name, workflow.version, workflow.queue, workflow.timeout
        if not isinstance(workflow, str):
            raise TypeError(f"start() needs a @workflow or its name, got {workflow!r}")
        check_name("workflow", workflow)
        local = self.registry.get(workflow) or default_registry.get(workflow)
        if local is not None:
            return local, local.name, local.version, local.queue, local.timeout
        remote = await self.runtime.store.latest_workflow_version(workflow)
        if remote is None:
            raise UnknownWorkflow(workflow)
        return None, workflow, *remote

    @property
    def queues(self) -> Queues:
        """Configure queue limits: ``await engine.queues.configure("emails", concurrency=2)``."""
        return Queues(lambda: self.runtime)

    def handle(self, run_id: UUID | str, *, resource_id: str | None = None) -> RunHandle[Any]:
        """A handle to an existing run, e.g. one started by another process. With
        ``resource_id`` every call through it treats a run of another resource as not
        found (``RunNotFound``)."""
        return RunHandle(self, UUID(str(run_id)), resource_id=check_resource_id(resource_id))

    # -- acting on runs ----------------------------------------------------------------------

    async def signal(
        self,
        run_id: UUID | str | None = None,
        name: str | None = None,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        resource_id: str | None = None,
        workflow: Workflow[..., Any] | str | None = None,
        delivery_key: str | None = None,
    ) -> SignalDelivery:
        """Send signal ``name`` with ``payload`` to a run; see ``SignalDelivery.kind``.

        A signal sent before the run waits for it is buffered. The run is ``run_id``, or
        the run of ``workflow`` started with ``idempotency_key`` (the business key, e.g.
        ``workflow="checkout", idempotency_key="order-42"``); no such run is
        ``run_not_found``. The signal's own dedupe key is ``delivery_key`` (with a
        ``run_id``, ``idempotency_key`` also means it): a repeat is ``duplicate``, stored
        once. With ``resource_id``, a run of another resource is ``run_not_found`` and
        nothing is stored.
        """
        delivery = await signal_run(
            self.runtime, run_id, name, payload, idempotency_key=idempotency_key,
            resource_id=resource_id, workflow=workflow, delivery_key=delivery_key,
        )  # fmt: skip
        self.runtime.telemetry.signal_sent(str(delivery.kind))  # every outcome, by kind
        return delivery

    async def cancel(self, run_id: UUID | str, *, resource_id: str | None = None) -> bool:
        """Cancel a run and its unfinished children. A step running now is cancelled, and a
        cancelled run never records another step. False when the run had already finished.
        With ``resource_id``, a run of another resource raises ``RunNotFound``."""
        target = UUID(str(run_id))
        await require_in_resource(self.runtime, target, check_resource_id(resource_id))
        return await cancel_run(self.runtime, target)


def _queues_of(registry: Registry) -> tuple[str, ...]:
    queues = sorted({wf.queue for wf in registry})
    return tuple(queues) if queues else ("default",)
