"""The built-in Postgres poller: claim, lease, heartbeat, execute, shut down.

The claim loop wakes on LISTEN notifications, on a freed slot when there may be more work,
and on the earliest future ``wake_at`` (timers, delayed starts, lease expiries); polling
every ``poll_interval`` is only the fallback. Claims are batched and bounded by free slots.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from uuid import UUID

import anyio
from anyio.abc import TaskGroup

from durable._execution import Execution
from durable._listener import Signal
from durable._queues import choose_runs
from durable._runtime import Runtime
from durable._store import LOOP_ERRORS, Claimed

__all__ = ["Worker"]

_log = logging.getLogger("durable.worker")


class Worker:
    """Executes due runs of the registered workflows, up to ``concurrency`` at once."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.active: dict[UUID, Execution] = {}
        self._wake = Signal()
        self._stopping = False
        self._claim_scope = anyio.CancelScope()
        self._idle = anyio.Event()
        self._maybe_more = False
        names = [(wf.name, wf.version) for wf in runtime.registry]
        self._names = [n for n, _ in names]
        self._versions = [v for _, v in names]
        self._managed: set[str] = set()
        self._managed_stale = True
        self._claiming = False
        self.running = False

    @property
    def free_slots(self) -> int:
        return self.settings.concurrency - len(self.active)

    def on_run(self, run_id: UUID, what: str) -> None:
        """A run changed: when one executing here was cancelled or paused, stop its
        execution (its lease-fenced writes would be refused anyway)."""
        if what in ("cancelled", "paused"):
            execution = self.active.get(run_id)
            if execution is not None:
                _log.info("run %s was %s; cancelling its execution", run_id, what)
                execution.scope.cancel()

    def wake(self, queue: str = "") -> None:
        """Claim again soon (called on NOTIFY of ``queue``; "" means any)."""
        if queue == "*queues":  # a queue's limits changed
            self._managed_stale = True
            self._wake.set()
        elif not queue or queue in self.settings.queues:
            self._wake.set()

    async def register(self) -> None:
        """Record this worker and the (name, version) pairs it serves."""
        await self.runtime.store.register_worker(
            self.runtime.worker_id,
            socket.gethostname(),
            os.getpid(),
            self.settings.queues,
            self.settings.concurrency,
            [(wf.name, wf.version, wf.queue) for wf in self.runtime.registry],
        )

    async def run(self, tg: TaskGroup) -> None:
        """Claim and execute until stop(); run executions in ``tg``."""
        self.running = True
        tg.start_soon(self._heartbeat_loop)
        try:
            with self._claim_scope:
                await self._claim_loop(tg)
        finally:
            self.running = False

    async def _claim_loop(self, tg: TaskGroup) -> None:
        while not self._stopping:
            claimed = 0
            if self.free_slots > 0 and self._names:
                try:
                    claimed = await self._claim_batch(tg)
                except LOOP_ERRORS as exc:
                    _log.warning("claim failed (%s); retrying", exc)
                    await anyio.sleep(min(1.0, self.settings.poll_interval))
                    continue
            if claimed and self._maybe_more and self.free_slots > 0:
                continue  # a full batch: there may be more due right now
            if not await self._wake.wait(await self._idle_timeout()):
                self._managed_stale = True  # a quiet poll: re-read managed queues too

    @property
    def busy(self) -> bool:
        """True while a claim is in flight or a run executes here."""
        return self._claiming or bool(self.active)

    async def _claim_batch(self, tg: TaskGroup) -> int:
        self._claiming = True
        try:
            return await self._claim_into(tg)
        finally:
            self._claiming = False

    async def _claim_into(self, tg: TaskGroup) -> int:
        store, limit = self.runtime.store, self.free_slots
        if self._managed_stale:
            self._managed = await store.managed_queues()
            self._managed_stale = False
        fast = [q for q in self.settings.queues if q not in self._managed]
        rows: list[Claimed] = []
        if fast:
            rows = await store.claim(
                self.runtime.worker_id, self.settings.lease_seconds, limit, fast,
                self._names, self._versions,
            )  # fmt: skip
        for queue in self.settings.queues:
            if queue in self._managed and len(rows) < limit:
                rows += await store.claim_managed(
                    queue, self.runtime.worker_id, self.settings.lease_seconds,
                    limit - len(rows), self._names, self._versions, choose_runs,
                )  # fmt: skip
        self._maybe_more = len(rows) == limit
        for row in rows:
            self._start(tg, row)
        return len(rows)

    def _start(self, tg: TaskGroup, row: Claimed) -> None:
        workflow = self.runtime.registry.get(row["workflow_name"], row["workflow_version"])
        if workflow is None:  # cannot happen: the claim filters on registered pairs
            raise RuntimeError(f"claimed a run of unregistered workflow {row['workflow_name']}")
        execution = Execution(self.runtime, row, workflow)
        self.active[execution.run_id] = execution
        tg.start_soon(self._execute, execution)

    async def _execute(self, execution: Execution) -> None:
        try:
            await execution.run()
        finally:
            self.active.pop(execution.run_id, None)
            # A parked run has a new wake time: the idle loop must re-read the next timer.
            if self._maybe_more or self._stopping or execution.parked:
                self._wake.set()
            if not self.active:
                self._idle.set()

    async def _idle_timeout(self) -> float:
        """Sleep until the next known wake time, capped by the fallback poll interval."""
        try:
            seconds = await self.runtime.store.next_wake()
        except LOOP_ERRORS:
            return self.settings.poll_interval
        if seconds is None or math.isnan(seconds):
            return self.settings.poll_interval
        return max(0.0, min(seconds, self.settings.poll_interval))

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.heartbeat_seconds)
            if not self.running and not self.active:
                return
            telemetry = self.runtime.telemetry
            await telemetry.refresh_queue_depth(self.runtime.store, self.settings.queues)
            # Judge only the executions this heartbeat covered: a run claimed (or claimed
            # again) while the statement was on the wire is not missing from it.
            sent = dict(self.active)
            try:
                held = await self.runtime.store.heartbeat(
                    self.runtime.worker_id, self.settings.lease_seconds, list(sent)
                )
                await self.runtime.sync_clock()
            except LOOP_ERRORS as exc:
                _log.warning("heartbeat failed (%s); will retry", exc)
                continue
            for run_id, execution in sent.items():
                if run_id not in held and self.active.get(run_id) is execution:
                    _log.warning("run %s: lease lost; cancelling its execution", run_id)
                    execution.scope.cancel()

    async def stop(self) -> None:
        """Stop claiming, let running executions finish within the grace period, then hand
        the rest back so another worker resumes them at once."""
        self._stopping = True
        self._claim_scope.cancel()
        if self.active:
            self._idle = anyio.Event()
            with anyio.move_on_after(self.settings.shutdown_grace_seconds):
                await self._idle.wait()
        leftover = list(self.active)
        for execution in list(self.active.values()):
            execution.scope.cancel()
        with anyio.CancelScope(shield=True):
            try:
                if leftover:
                    await self.runtime.store.release(self.runtime.worker_id, leftover)
                await self.runtime.store.unregister_worker(self.runtime.worker_id)
            except LOOP_ERRORS as exc:
                _log.warning("could not hand back runs on shutdown (%s); leases will expire", exc)
