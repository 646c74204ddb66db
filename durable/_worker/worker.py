"""``Worker``: executes the runs of some workflows for a client, in this process.

``async with Worker(client, workflows=[...], concurrency=8):`` claims due runs of those
workflows (the poller), fires their schedules (the scheduler) and wakes on the client's
LISTEN connection. ``Engine`` is a client with one such worker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self
from uuid import UUID

import anyio
from anyio.abc import TaskGroup

from durable._foundation.validate import names, real, seconds, seconds_or_none
from durable._runs.partitions import keep_partitions_ahead
from durable._runs.registry import Registry
from durable._runs.runtime import Runtime, Settings
from durable._worker.execution import Execution
from durable._worker.poller import Poller
from durable._worker.scheduler import Scheduler
from durable._worker.webhook_delivery import deliver_webhook
from durable._worker.webhook_dispatch import WebhookDispatcher
from durable._workflow.decorators import check_retries, workflow_list

if TYPE_CHECKING:
    from durable._client.client import Client

__all__ = ["Worker"]

Duration = float | int | timedelta | str


class Worker:
    """Runs the workflows it serves for ``client``: claims their due runs, up to
    ``concurrency`` at once, and fires their schedules.

    ``workflows`` (default: the client's) are the workflows served, ``queues`` (default:
    theirs) the queues claimed from. ``lease_seconds`` is how long a claimed run stays
    this worker's without a heartbeat (every ``heartbeat_seconds``, default a third of
    it); ``poll_interval`` is the fallback when no notification arrives;
    ``shutdown_grace_seconds`` is how long running executions get to finish on exit.
    ``default_step_timeout``/``default_step_retries`` apply to steps that set none in
    workflows that set none; ``max_run_attempts`` fails a run whose executions keep
    losing their lease before recording anything; ``retention`` prunes older finished runs.
    ``manual=True`` claims and fires schedules only when told (``claim_once``,
    ``scheduler.fire_due``), for tests.
    """

    def __init__(
        self,
        client: Client,
        *,
        workflows: Iterable[object] | None = None,
        queues: Iterable[str] | None = None,
        concurrency: int = 16,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float | None = None,
        poll_interval: float = 5.0,
        inline_wait_seconds: float = 5.0,
        shutdown_grace_seconds: float = 30.0,
        max_child_depth: int = 8,
        max_children_per_run: int = 1000,
        retention: Duration | None = None,
        default_step_timeout: Duration | None = None,
        default_step_retries: int = 0,
        max_run_attempts: int = 10,
        manual: bool = False,
    ) -> None:
        self.client = client
        self.manual = manual
        """True: nothing claims or fires schedules by itself; see ``claim_once``."""
        self.registry = client.registry if workflows is None else Registry(workflow_list(workflows))
        self.registry.add(deliver_webhook)  # outbound webhooks are runs of every worker
        lease_seconds = real("lease_seconds", lease_seconds, above=True)
        self.settings: Settings = dataclasses.replace(
            client.settings,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            heartbeat_seconds=lease_seconds / 3 if heartbeat_seconds is None else heartbeat_seconds,
            poll_interval=poll_interval,
            inline_wait_seconds=inline_wait_seconds,
            shutdown_grace_seconds=shutdown_grace_seconds,
            queues=_queues_of(self.registry) if queues is None else names("queues", queues),
            max_child_depth=max_child_depth,
            max_children_per_run=max_children_per_run,
            retention_seconds=None if retention is None else seconds("retention", retention),
            default_step_timeout=seconds_or_none("default_step_timeout", default_step_timeout),
            default_step_retries=check_retries(default_step_retries, "default_step_retries"),
            max_run_attempts=max_run_attempts,
        )
        self.poller: Poller | None = None
        self.scheduler: Scheduler | None = None
        self._runtime: Runtime | None = None
        self._own_runtime = False
        self._tg: TaskGroup | None = None
        self._unlisten: list[Callable[[], None]] = []
        """Removes this worker's callbacks from the listener it shares with others."""

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        base = self.client.runtime
        runtime = Runtime(
            base.store, self.settings, self.registry, base.listener, telemetry=base.telemetry,
            hooks=base.hooks,  # the client's hooks and queue: the client delivers them
        )  # fmt: skip
        runtime.make_handle = base.make_handle
        await runtime.sync_clock()
        self._own_runtime = True
        try:
            await self._start(runtime)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self, runtime: Runtime) -> None:
        """Register with the database and start the loops on ``runtime`` (the client's
        own when an ``Engine`` runs this worker: one clock, one record writer)."""
        self._runtime = runtime
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        listener = runtime.listener
        self.poller = Poller(runtime)
        self._unlisten += [
            listener.on_wake(self.poller.wake),
            listener.on_control(self.poller.on_control),
        ]
        await self.poller.register()
        self.scheduler = Scheduler(runtime)
        self._unlisten.append(listener.on_wake(self.scheduler.wake))
        await self.scheduler.register()
        self._tg.start_soon(keep_partitions_ahead, runtime)
        self._tg.start_soon(WebhookDispatcher(runtime, self.client).run)
        if not self.manual:
            self._tg.start_soon(self.poller.run, self._tg)
            self._tg.start_soon(self.scheduler.run)

    async def _stop(self) -> None:
        for remove in self._unlisten:
            remove()
        self._unlisten.clear()
        with anyio.CancelScope(shield=True):
            if self.poller is not None:
                await self.poller.stop()
            if self._own_runtime and self._runtime is not None:
                await self._runtime.writer.close()
                await self._runtime.starts.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None

    # -- what tests and operators ask of a worker -------------------------------------------

    @property
    def id(self) -> str:
        """``host:pid:random``: the ``lease_owner`` of the runs this worker holds."""
        return self.runtime.worker_id

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the worker is not running: use `async with Worker(client):`")
        return self._runtime

    @property
    def running(self) -> bool:
        """True while the poller's loop runs."""
        return self.poller is not None and self.poller.running

    @property
    def busy(self) -> bool:
        """True while a claim is in flight or a run executes here."""
        return self.poller is not None and self.poller.busy

    @property
    def active(self) -> dict[UUID, Execution]:
        """The executions running now, by run id."""
        return {} if self.poller is None else self.poller.active

    async def claim_once(self) -> int:
        """Claim the runs due now (as many as there are free slots) and execute each until
        it parks or finishes; return how many ran. Only a manual worker
        (``Worker(..., manual=True)``, ``Engine(worker="manual")``) is driven this way: tests
        move it one claim at a time, so a run that must not move needs no sleep to show it."""
        if self.poller is None:
            raise RuntimeError("the worker is not running: use `async with Worker(client):`")
        return await self.poller.claim_once()

    def wake(self, queue: str = "") -> None:
        """Claim now instead of at the next notification or poll."""
        if self.poller is not None:
            self.poller.wake(queue)


def _queues_of(registry: Registry) -> tuple[str, ...]:
    queues = sorted({wf.queue for wf in registry})
    return tuple(queues) if queues else ("default",)
