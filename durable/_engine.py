"""``Engine``: a ``Client`` that also runs a ``Worker`` for its workflows, in one
``async with``. Its own code is lifecycle only: the verbs live on ``Client``, execution
on ``Worker``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from durable._client.client import Client
from durable._foundation.hooks import Hooks
from durable._runs.hook_dispatch import DEFAULT_QUEUE_SIZE
from durable._worker.scheduler import Scheduler
from durable._worker.worker import Worker

__all__ = ["Engine"]

Duration = float | int | timedelta | str


class Engine(Client):
    """The entry point: a connection to Postgres, a worker, and operations on runs.

    ``database_url=None`` reads ``DURABLE_DATABASE_URL``, then ``DATABASE_URL``; with
    neither set it starts an embedded PostgreSQL in ``data_dir`` (default ``./.durable``).
    Entering the engine connects, applies migrations and, with ``worker=True``, starts
    the built-in worker for the registered workflows (all of them, or ``workflows=``).
    ``max_input_bytes``/``max_output_bytes``/``max_signal_bytes`` cap encoded payloads
    (``PayloadTooLarge``); ``retention`` (a duration) prunes older finished runs.
    ``default_workflow_timeout`` bounds runs whose workflow and start set no timeout;
    ``default_step_timeout``/``default_step_retries`` apply to steps that set no
    ``timeout``/``retries`` in workflows that set no ``step_timeout``/``step_retries``.
    ``max_run_attempts`` (10) fails a poison run with ``RunAttemptsExhausted`` once that
    many executions in a row lost their lease before recording or parking anything.
    ``Engine(worker=False)`` is a plain ``Client``; ``read_url`` as for ``Client``.
    ``worker="manual"`` builds the worker but lets nothing claim by itself: a test drives
    it with ``await engine.worker.claim_once()`` (and schedules with
    ``engine.scheduler.fire_due()``). ``hooks`` (a ``durable.Hooks``, also ``engine.hooks``)
    are lifecycle callbacks for every run it executes or cancels;
    ``hook_queue_size`` bounds the events waiting for them.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        concurrency: int = 16,
        workflows: Iterable[object] | None = None,
        worker: bool | Literal["manual"] = True,
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
        read_url: str | None = None,
        hooks: Hooks | None = None,
        hook_queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        super().__init__(
            database_url,
            workflows=workflows,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            log_during_replay=log_during_replay,
            data_dir=data_dir,
            pool_size=pool_size,
            max_input_bytes=max_input_bytes,
            max_output_bytes=max_output_bytes,
            max_signal_bytes=max_signal_bytes,
            default_workflow_timeout=default_workflow_timeout,
            read_url=read_url,
            hooks=hooks,
            hook_queue_size=hook_queue_size,
        )
        if worker not in (True, False, "manual"):
            raise ValueError(f'worker must be True, False or "manual", not {worker!r}')
        # Built (and its options checked) now, entered with the engine.
        self._planned = Worker(
            self,
            manual=worker == "manual",
            queues=queues,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            heartbeat_seconds=heartbeat_seconds,
            poll_interval=poll_interval,
            inline_wait_seconds=inline_wait_seconds,
            shutdown_grace_seconds=shutdown_grace_seconds,
            max_child_depth=max_child_depth,
            max_children_per_run=max_children_per_run,
            retention=retention,
            default_step_timeout=default_step_timeout,
            default_step_retries=default_step_retries,
            max_run_attempts=max_run_attempts,
        )
        self.settings = self._planned.settings  # one runtime serves the client and worker
        self._want_worker = worker
        self.worker: Worker | None = None

    @property
    def scheduler(self) -> Scheduler | None:
        """The worker's schedule loop (None without a worker)."""
        return None if self.worker is None else self.worker.scheduler

    def _default_pool_size(self) -> int:
        return min(max(4, self.settings.concurrency // 2 + 2), 20)

    def _loops_running(self) -> tuple[bool, bool]:
        scheduler = self.scheduler
        return self.worker is not None and self.worker.running, (
            scheduler is not None and scheduler.running
        )

    async def _open(self) -> None:
        await super()._open()
        if self._want_worker:
            self.worker = self._planned
            await self.worker._start(self.runtime)

    async def _close(self) -> None:
        if self.worker is not None:
            await self.worker._stop()
        await super()._close()
