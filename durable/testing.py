"""A harness for testing your own workflows: a fresh database and a clock you control.

::

    from durable.testing import Environment

    async def test_approval():
        async with Environment(workflows=[approval]) as env:
            handle = await env.start(approval, "order-1")
            await env.run_until_idle()              # skips the 7-day sleep at once
            await handle.signal("approve", True)
            assert await handle.result(timeout=5) == "approved"

``Environment`` creates a new database on the embedded PostgreSQL (or on the server of
``database_url``), runs an engine with a worker on it, and drops the database on exit.
The clock is the database's ``durable.now()`` shifted by an offset every connection sees,
so ``advance("3d")`` makes three days pass for every timer at once.

``Replayer`` replays exported run histories (``engine.export_run``, ``durable runs
export``) against the current code, with no database, to prove a change is safe for the
runs already in flight (see ``docs/versioning.md``)::

    from durable.testing import Replayer

    REPORTS = Replayer(workflows=[checkout]).replay_many("tests/histories")

    @pytest.mark.parametrize("report", REPORTS, ids=lambda report: str(report.run_id))
    def test_history_replays(report):
        assert report.ok, report.describe()
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import anyio

from durable._client.handles import RunHandle
from durable._engine import Engine
from durable._foundation.dsn import dsn_for_database
from durable._foundation.history import History, HistoryRecord, HistorySignal, InvalidHistory
from durable._foundation.validate import seconds
from durable._replaying.replayer import Replayer, ReplayReport
from durable._store.connecting import connector
from durable._store.embedded import EmbeddedPostgres, resolve_database_url
from durable._workflow.decorators import Workflow, workflow_list

__all__ = [
    "Environment",
    "History",
    "HistoryRecord",
    "HistorySignal",
    "InvalidHistory",
    "ReplayReport",
    "Replayer",
    "database_now",
    "shift_clock",
]

R = TypeVar("R")
_SETTLE = 0.005  # seconds between idle checks: short, the worker is woken by NOTIFY anyway


class Environment:
    """An engine on a fresh database, with a controllable clock.

    ``database_url`` names the server to create the database on (default:
    ``DURABLE_TEST_DATABASE_URL``, ``DURABLE_DATABASE_URL``, ``DATABASE_URL``, then the
    embedded PostgreSQL). The database is named ``<database_prefix>_<random>``. Other
    keyword arguments go to ``Engine``. Waits never stay
    in-process here (``inline_wait_seconds=0``), so only the harness moves time.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        workflows: Iterable[object] | None = None,
        database_prefix: str = "durable_env",
        **engine_options: Any,
    ) -> None:
        if not database_prefix.isidentifier() or len(database_prefix) > 40:
            raise ValueError("database_prefix must be an identifier of at most 40 characters")
        self._prefix = database_prefix
        self._server_url = database_url or os.environ.get("DURABLE_TEST_DATABASE_URL")
        self._workflows = None if workflows is None else workflow_list(workflows)
        options: dict[str, Any] = {"inline_wait_seconds": 0.0, "poll_interval": 1.0}
        options.update(engine_options)
        self._options = options
        self._embedded: EmbeddedPostgres | None = None
        self._database: str | None = None
        self._admin_url: str | None = None
        self._engine: Engine | None = None

    @property
    def database_url(self) -> str:
        """The DSN of this environment's database, e.g. for a client ``Engine(worker=False)``."""
        if self._admin_url is None or self._database is None:
            raise RuntimeError("the Environment is not entered: use `async with Environment()`")
        return dsn_for_database(self._admin_url, self._database)

    @property
    def engine(self) -> Engine:
        """The running engine (starts runs, signals, reads runs)."""
        if self._engine is None:
            raise RuntimeError("the Environment is not entered: use `async with Environment()`")
        return self._engine

    async def __aenter__(self) -> Environment:
        server = resolve_database_url(self._server_url)
        if server is None:
            self._embedded = EmbeddedPostgres()
            server = await self._embedded.start()
        self._admin_url = server
        self._database = f"{self._prefix}_{uuid.uuid4().hex[:12]}"
        await _admin(server, f'CREATE DATABASE "{self._database}"')
        engine = Engine(
            dsn_for_database(server, self._database), workflows=self._workflows, **self._options
        )
        try:
            await engine.__aenter__()
        except BaseException:
            await self._drop()
            raise
        self._engine = engine
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._engine is not None:
                await self._engine.__aexit__(exc_type, exc, tb)
                self._engine = None
        finally:
            await self._drop()

    async def _drop(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._admin_url is not None and self._database is not None:
                await _admin(
                    self._admin_url, f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)'
                )
                self._database = None
            if self._embedded is not None:
                await self._embedded.stop()
                self._embedded = None

    async def start(
        self, workflow: Workflow[..., R] | str, /, *args: Any, **kwargs: Any
    ) -> RunHandle[R]:
        """``engine.start`` on this environment's engine."""
        handle: RunHandle[R] = await self.engine.start(workflow, *args, **kwargs)
        return handle

    async def advance(self, duration: float | timedelta | str) -> None:
        """Move the clock forward by ``duration`` for every connection, then run everything
        that became due (timers, retry backoffs, wait timeouts, delayed starts, schedule
        ticks) until idle. Ticks missed by one jump follow the schedule's catch-up policy."""
        await self.run_until_idle(skip_timers=False)
        await shift_clock(self.engine, duration)
        await self.fire_schedules()
        await self.run_until_idle(skip_timers=False)

    async def fire_schedules(self) -> int:
        """Fire the schedule ticks due now (the worker also does, within ``poll_interval``);
        return the number of runs started."""
        scheduler = self.engine.scheduler
        if scheduler is None:
            raise RuntimeError("fire_schedules needs an engine with worker=True")
        return await scheduler.fire_due()

    async def run_until_idle(self, *, skip_timers: bool = True, timeout: float = 30.0) -> None:
        """Drive runs until every run is finished or waits on something time can't bring
        (a signal, a child). Timers (sleeps, retry backoffs, delayed starts) fire at once:
        the clock skips ahead to each. Wait timeouts never fire here; use ``advance()``.
        """
        with anyio.fail_after(timeout):
            while True:
                await self._drain()
                if not skip_timers:
                    return
                wait = await self.engine.runtime.store.next_timer()
                if wait is None:
                    return
                await self.engine.runtime.store.shift_clock(max(float(wait), 0.0) + 0.001)
                await self.engine.runtime.sync_clock()

    async def _drain(self) -> None:
        """Run due runs until none is due and the worker is idle."""
        worker = self.engine.worker
        if worker is None:
            raise RuntimeError("run_until_idle needs an engine with worker=True")
        if worker.manual:  # worker="manual": drive it claim by claim, no settling
            while await worker.claim_once():
                pass
            return
        store = self.engine.runtime.store
        while True:
            worker.wake()
            await anyio.sleep(_SETTLE)
            if worker.busy:
                continue
            if await store.count_due_runs() == 0 and not worker.busy:
                return

    async def now(self) -> float:
        """The environment's clock (``durable.now()``) as epoch seconds."""
        return (await database_now(self.engine)).timestamp()


async def shift_clock(engine: Engine, duration: float | timedelta | str, *others: Engine) -> float:
    """Move ``durable.now()`` forward by ``duration`` for every connection to ``engine``'s
    database, and tell ``engine`` and ``others`` (more engines on that database) at once;
    return the total shift in seconds. Every timer compares against this clock, so a
    sleep, a retry backoff or a wait's timeout falls due as if the time had passed.
    Use it on a test database only: the clock never moves back.

    With ``Engine(worker="manual")``, follow it with ``await engine.worker.claim_once()``
    to run what fell due."""
    total = await engine.runtime.store.shift_clock(seconds("duration", duration))
    for each in (engine, *others):
        await each.runtime.sync_clock()
    return total


async def database_now(engine: Engine) -> datetime:
    """``durable.now()`` on ``engine``'s database: the clock timers and run times use."""
    return await engine.runtime.store.db_now()


async def _admin(server_dsn: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot take parameters; names here are generated, never input.
    conn = await connector(server_dsn)()
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
