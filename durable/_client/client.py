"""``Client``: a connection to durable's tables, to start, signal, inspect and manage runs.

A client runs no workflow code: the workers serving a run's workflow execute it, in this
process (``Engine``, ``Worker``) or elsewhere. ``Client.from_pool`` shares the caller's
asyncpg pool, and ``client.start(..., connection=conn)`` stores a run inside the caller's
own transaction, so it exists only if that transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, overload
from uuid import UUID

import anyio
import asyncpg
from anyio.abc import TaskGroup

from durable._client.addressing import signal_run
from durable._client.events import EngineEvents
from durable._client.handles import RunHandle
from durable._client.housekeeping import ClientHousekeeping
from durable._client.management import ClientOperations, Health, check_health, fork_run
from durable._client.queues import Queues
from durable._client.reads import ClientReads
from durable._client.schedules import Schedules
from durable._foundation.dsn import redact, scrub
from durable._foundation.hooks import Hooks, check_hooks
from durable._foundation.run_ids import new_run_id
from durable._foundation.telemetry import Telemetry
from durable._foundation.validate import (
    check_delay,
    check_name,
    check_optional_key,
    check_priority,
    check_run_id,
    check_tags,
    seconds_or_none,
    whole,
)
from durable._runs import current
from durable._runs.deliveries import SignalDelivery
from durable._runs.hook_dispatch import DEFAULT_QUEUE_SIZE, HookDispatcher
from durable._runs.operations import cancel_run
from durable._runs.registry import Registry, default_registry
from durable._runs.runtime import Runtime, Settings
from durable._runs.scoping import check_resource_id, encode_metadata, require_in_resource
from durable._runs.starting import NewRun, encode_input, start_heard
from durable._store.connecting import connector
from durable._store.embedded import EmbeddedPostgres, resolve_database_url
from durable._store.listener import Listener
from durable._store.listener_share import acquire_listener, release_listener
from durable._store.migrations import migrate
from durable._store.pool import BorrowedPool, ConnectionPool
from durable._store.replicas import ReplicaPool, open_replica_pool
from durable._store.store import Store
from durable._workflow.decorators import Workflow, workflow_list
from durable.errors import UnknownWorkflow

__all__ = ["Client"]

R = TypeVar("R")
Duration = float | int | timedelta | str
_log = logging.getLogger("durable")


class Client(ClientOperations, ClientReads, ClientHousekeeping, EngineEvents):
    """Start, signal, cancel, inspect and manage runs; runs no workflow code itself.

    ``database_url=None`` reads ``DURABLE_DATABASE_URL``, then ``DATABASE_URL``; with
    neither set it starts an embedded PostgreSQL in ``data_dir`` (default ``./.durable``).
    Entering the client connects and applies migrations. ``workflows`` (default: every
    decorated workflow) lets ``start`` by name check arguments against local code.
    ``max_input_bytes``/``max_output_bytes``/``max_signal_bytes`` cap encoded payloads
    (``PayloadTooLarge``); ``default_workflow_timeout`` bounds runs whose workflow and
    start set no timeout. ``read_url`` names a replica for lists, counts, run details,
    exports and the dashboard (writes, claims and handles always use the primary); a URL
    naming several hosts (``postgresql://h1,h2/db``) fails over to whichever accepts writes.
    ``hooks`` (a ``durable.Hooks``, also ``client.hooks``) are
    lifecycle callbacks: a client fires ``RunCancelledEvent`` for the runs it cancels, and
    a worker on it fires the rest; ``hook_queue_size`` bounds the events waiting for them.

    ``async with Client(url) as client: await client.start(checkout, order)``
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        workflows: Iterable[object] | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        log_during_replay: bool = False,
        data_dir: str | Path | None = None,
        pool_size: int | None = None,
        max_input_bytes: int = 1 << 20,
        max_output_bytes: int = 1 << 20,
        max_signal_bytes: int = 256 << 10,
        default_workflow_timeout: Duration | None = None,
        read_url: str | None = None,
        hooks: Hooks | None = None,
        hook_queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        chosen = check_hooks(hooks, f"{type(self).__name__}(hooks=)")
        self.hooks = chosen if chosen is not None else Hooks()
        """Lifecycle hooks for every run: ``@engine.hooks.on(durable.RunFailedEvent)``."""
        self._hook_queue_size = whole("hook_queue_size", hook_queue_size, low=1)
        self.registry = (
            default_registry if workflows is None else Registry(workflow_list(workflows))
        )
        self.settings = Settings(
            max_input_bytes=max_input_bytes,
            max_output_bytes=max_output_bytes,
            max_signal_bytes=max_signal_bytes,
            default_workflow_timeout=seconds_or_none(
                "default_workflow_timeout", default_workflow_timeout
            ),
        )
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.telemetry = Telemetry(
            tracer_provider, meter_provider, log_during_replay=log_during_replay
        )
        self._database_url = database_url
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._pool_size = None if pool_size is None else whole("pool_size", pool_size, low=1)
        self._borrowed: asyncpg.Pool | None = None
        self._embedded: EmbeddedPostgres | None = None
        self._pool: ConnectionPool | None = None
        self._read_url = read_url
        self._read_pool: ReplicaPool | None = None
        self._tg: TaskGroup | None = None
        self._runtime: Runtime | None = None
        self._listener: Listener | None = None
        self._listener_shared = False

    @classmethod
    def from_pool(cls, pool: asyncpg.Pool, **options: Any) -> Self:
        """A client on the caller's own asyncpg pool (left open when the client closes).
        One of its connections is held for LISTEN while the client is open."""
        if not isinstance(pool, asyncpg.Pool):
            raise TypeError(f"from_pool() needs an asyncpg.Pool, got {type(pool).__name__}")
        client = cls(**options)
        client._borrowed = pool
        return client

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self._close()
            raise
        current.enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        current.leave(self)
        await self._close()

    def _default_pool_size(self) -> int:
        return 4

    async def _open(self) -> None:
        pool, listener, where = await self._connect()
        self._pool, self._listener = pool, listener
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            _log.info("applied durable migrations %s", applied)
        self._read_pool = await open_replica_pool(
            self._read_url, pool, max_size=self._pool_size or self._default_pool_size()
        )
        await listener.start()
        runtime = Runtime(
            Store(pool), self.settings, self.registry, listener, telemetry=self.telemetry,
            read_store=None if self._read_pool is None else Store(self._read_pool),
            hooks=HookDispatcher(self.hooks, self._hook_queue_size),
        )  # fmt: skip
        runtime.make_handle = self._child_handle
        self._runtime = runtime
        await runtime.sync_clock()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(listener.run)
        self._tg.start_soon(runtime.hooks.run)
        _log.info("durable %s connected to %s", type(self).__name__.lower(), where)

    async def _connect(self) -> tuple[ConnectionPool, Listener, str]:
        if self._borrowed is not None:
            borrowed = BorrowedPool(self._borrowed)
            listener = Listener(borrowed.lend, release=borrowed.give_back)
            return borrowed, listener, "the application's pool"
        url = resolve_database_url(self._database_url)
        if url is None:
            self._embedded = EmbeddedPostgres()
            url = await self._embedded.start(self._data_dir)
        size = self._pool_size or self._default_pool_size()
        pool = ConnectionPool(connector(url), max_size=size)  # multi-host: the writable one
        try:
            await pool.open()
        except ValueError as exc:  # a malformed URL: the driver may quote pieces of it
            message = f"invalid database URL {redact(url)}: {scrub(str(exc), url)}"
            raise ValueError(message) from None
        self._pool = pool  # closed by _close should the listener fail to connect
        # One LISTEN connection per process and database, however many clients use it.
        listener = await acquire_listener(url)
        self._listener_shared = True
        return pool, listener, redact(url)

    async def _close(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._runtime is not None:
                await self._runtime.writer.close()
                await self._runtime.starts.close()
                await self._runtime.reader.close()
                await self._runtime.hooks.close(self.settings.shutdown_grace_seconds)
            listener, self._listener = self._listener, None
            if listener is not None:
                await (release_listener(listener) if self._listener_shared else listener.close())
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None
        with anyio.CancelScope(shield=True):
            if self._read_pool is not None:
                await self._read_pool.close()
                self._read_pool = None
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
            if self._embedded is not None:
                await self._embedded.stop()
                self._embedded = None

    @property
    def runtime(self) -> Runtime:
        """The live parts of an open client (store, settings, listener, telemetry)."""
        if self._runtime is None:
            name = type(self).__name__
            raise RuntimeError(f"the {name.lower()} is not open: use `async with {name}():`")
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
        connection: asyncpg.Connection | None = None,
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
        connection: asyncpg.Connection | None = None,
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
        connection: asyncpg.Connection | None = None,
        **kwargs: Any,
    ) -> RunHandle[Any]:
        """Start a run of ``workflow`` (an object or a registered name) and return its handle.

        The run is stored and the workers are woken in one transaction. With
        ``connection`` (an asyncpg connection of the caller's, typically inside
        ``async with conn.transaction():``) the run is stored in the caller's transaction:
        it exists, and workers see it, only if that transaction commits.
        With an ``idempotency_key``, a repeat start of the same workflow returns the first
        run. ``priority`` orders due runs (higher first); runs sharing a
        ``concurrency_key`` in a queue run at most ``key_concurrency`` at a time (see
        ``queues``). Arguments are encoded by the workflow's type hints; a value that
        cannot be encoded raises ``SerializationError`` and stores nothing.
        ``resource_id`` scopes the run to a tenant or user (calls scoped to another
        resource never see it) and ``metadata`` is a small JSON object (4 KiB encoded at
        most) shown with the run. ``timeout`` bounds this run's total time (default: the
        workflow's ``timeout``, then ``default_workflow_timeout``); past it the run fails
        with ``WorkflowTimeout``.
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
            queue=default_queue if queue is None else queue,
            priority=priority,
            concurrency_key=concurrency_key,
            timeout=limit,
            resource_id=scope,
            metadata_json=metadata_json,
            connection=connection,
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
        connection: asyncpg.Connection | None = None,
    ) -> RunHandle[Any]:
        check_name("workflow", name)
        run_id = new_run_id() if run_id is None else check_run_id("run_id", run_id)
        idempotency_key = check_optional_key("idempotency_key", idempotency_key)
        concurrency_key = check_optional_key("concurrency_key", concurrency_key)
        queue, priority = check_name("queue", queue), check_priority(priority)
        tags, delay_seconds = check_tags(tags), check_delay(delay)
        runtime = self.runtime
        signature = None if wf is None else wf.signature
        input_json = encode_input(
            runtime, f"workflow {name!r}", signature, args, kwargs, by_name=by_name
        )
        request = NewRun(
            run_id=run_id, workflow=name, version=version, queue=queue, input_json=input_json,
            priority=priority, tags=tags, idempotency_key=idempotency_key,
            delay_seconds=delay_seconds, concurrency_key=concurrency_key,
            timeout_seconds=runtime.settings.run_timeout(
                timeout, wf.timeout if wf is not None else workflow_timeout
            ),
            resource_id=resource_id, metadata_json=metadata_json,
        )  # fmt: skip
        if request.concurrency_key is not None:
            await runtime.store.ensure_queue(queue)
        new_id, created, news = await start_heard(runtime, request, connection)
        # By name, the result is plain JSON too, whether or not this process has the code.
        handle = RunHandle(
            self, new_id, None if by_name else wf, created=created, resource_id=resource_id
        )
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
        """Configure queue limits: ``await client.queues.configure("emails", concurrency=2)``."""
        return Queues(lambda: self.runtime)

    def _child_handle(
        self, run_id: UUID, workflow: Workflow[..., Any], parent: UUID
    ) -> RunHandle[Any]:
        handle: RunHandle[Any] = RunHandle(self, run_id, workflow)
        handle.parent_run_id = parent
        return handle

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

    # -- operator views that need the client itself ------------------------------------------

    @property
    def schedules(self) -> Schedules:
        """Runtime schedules: ``await engine.schedules.create("nightly", report, "0 2 * * *")``."""
        return Schedules(self)

    async def fork(self, run_id: UUID | str, from_step: str | None = None) -> RunHandle[Any]:
        """A new run of the same workflow and input that reuses the results recorded
        before cursor key ``from_step`` and runs from there (None: from the start). The
        new run's ``forked_from`` links the source. ``ValueError`` for an unknown key."""
        return await fork_run(self, UUID(str(run_id)), from_step)

    async def health(self, timeout: float = 5.0) -> Health:
        """Database reachable, listener connected, worker and scheduler running, and the
        number of runs ready but not yet claimed."""
        return await check_health(self, timeout)
