"""The built-in Postgres poller: claim, lease, heartbeat, execute, shut down.

The claim loop wakes on LISTEN notifications, on a freed slot when there may be more work,
and on the earliest future ``wake_at`` (timers, delayed starts, lease expiries); polling
every ``poll_interval`` is only the fallback. Claims are batched and bounded by free slots.

No error ends a worker (invariant 8): the claim and heartbeat loops log, back off and go
on; a managed queue whose stored limits cannot be used is skipped (logged once per
problem) while the other queues are served.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from uuid import UUID

import anyio
from anyio.abc import TaskGroup

from durable._foundation.faults import INFRASTRUCTURE_ERRORS, Backoff, report_loop_failure
from durable._runs.runtime import Runtime
from durable._store.listener import Signal
from durable._store.rows import ClaimedRun
from durable._worker.execution import Execution
from durable._worker.queue_choice import choose_runs

__all__ = ["Poller"]

_log = logging.getLogger("durable.worker")
# A worker row silent this long (leases, with a floor) is a dead worker's: heartbeats
# remove it. A live worker whose row went anyway registers again at its next heartbeat.
STALE_LEASES = 10
STALE_FLOOR_SECONDS = 600.0


class Poller:
    """Executes due runs of the registered workflows, up to ``concurrency`` at once."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.active: dict[UUID, Execution] = {}
        self._ending = 0
        """Executions in ``active`` whose final write is queued or on the wire."""
        self._wake = Signal()
        self._stopping = False
        self._claim_scope = anyio.CancelScope()
        self._landing: anyio.CancelScope | None = None
        """Shields the claim on the wire from stop(), until the grace period is over."""
        self._loop_ended = anyio.Event()
        self._unstarted: list[UUID] = []
        """Runs a claim took as the worker stopped: stop() hands them back unstarted."""
        self._idle = anyio.Event()
        self._maybe_more = False
        names = [(wf.name, wf.version) for wf in runtime.registry]
        self._names = [n for n, _ in names]
        self._versions = [v for _, v in names]
        self._managed: set[str] = set()
        self._managed_stale = True
        self._claiming = False
        self._queue_problems: dict[str, str] = {}
        """Managed queues skipped for a problem, with the problem last logged."""
        self._confirming: set[UUID] = set()
        self._recheck: set[UUID] = set()
        self._tg: TaskGroup | None = None
        self._tasks: dict[Execution, asyncio.Task[None]] = {}
        """Each execution's task until it ends (one that parked its run may outlive its
        place in ``active``). Plain asyncio tasks: an anyio task costs a cancel scope and an
        event more, about 14 µs per run (docs/performance.md); each execution runs under a
        cancel scope of its own, which stop() cancels before joining the tasks."""
        self.running = False

    @property
    def free_slots(self) -> int:
        # A run whose body has ended and whose final write (finish, park) is on the wire
        # runs no code: its slot is free, so the next claim overlaps that write.
        return self.settings.concurrency - len(self.active) + self._ending

    def on_control(self, run_id: UUID, what: str) -> None:
        """A run executing here may have been cancelled or paused: check its row, and stop
        the execution if this worker no longer holds the run. The notification alone is
        not enough (anyone who can connect can NOTIFY)."""
        if what not in ("cancelled", "paused") or self._tg is None:
            return
        execution = self.active.get(run_id)
        if execution is None:
            return
        # One check in flight per run however many NOTIFYs arrive; one arriving during a
        # check asks for another, since the check may have read the row before the cancel.
        self._recheck.add(run_id)
        if run_id not in self._confirming:
            self._confirming.add(run_id)
            self._tg.start_soon(self._confirm_stop, execution)

    async def _confirm_stop(self, execution: Execution) -> None:
        run_id = execution.run_id
        try:
            while run_id in self._recheck:
                self._recheck.discard(run_id)
                # Extends the lease of a run still held; a cancelled or paused run is not.
                held, _ = await self.runtime.store.heartbeat(
                    self.runtime.worker_id, self.settings.lease_seconds, [run_id],
                    self._stale_after,
                )  # fmt: skip
                if run_id not in held:
                    break
            else:
                return
        except Exception as exc:  # the next heartbeat checks the run again
            report_loop_failure(_log, f"checking whether run {run_id} was cancelled", exc)
            return
        finally:
            self._confirming.discard(run_id)
            self._recheck.discard(run_id)
        if self._taken(execution):
            _log.info("run %s was cancelled or paused; cancelling its execution", run_id)
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
            [
                (wf.name, wf.version, wf.queue, wf.expected_steps, wf.timeout)
                for wf in self.runtime.registry
            ],
        )

    async def run(self, tg: TaskGroup) -> None:
        """Claim and execute until stop(); run executions in ``tg``."""
        self.running = True
        self._tg = tg
        tg.start_soon(self._heartbeat_loop)
        try:
            with self._claim_scope:
                await self._claim_loop()
        finally:
            self.running = False
            self._loop_ended.set()
            if not self._stopping:  # cancelled from outside: the executions go too
                self._cancel_executions()
                with anyio.CancelScope(shield=True):
                    await self._join()

    async def _claim_loop(self) -> None:
        poll = self.settings.poll_interval
        backoff = Backoff(first=min(0.05, poll), cap=max(1.0, poll))
        while not self._stopping:
            claimed = 0
            if self._slots_freeing():
                await self._wake.wait(poll)  # the ending executions wake the loop
                continue
            if self.free_slots > 0 and self._names:
                try:
                    claimed = await self._claim_landing()
                except Exception as exc:
                    await backoff.pause(_log, "claim", exc)
                    continue
                backoff.reset()
            if claimed and self._maybe_more and self.free_slots > 0:
                continue  # a full batch: there may be more due right now
            if self._maybe_more and self.active:
                # Full of work with more due: an ending execution wakes the loop, so the
                # next timer need not be read.
                await self._wake.wait(poll)
                continue
            if not await self._wake.wait(await self._idle_timeout()):
                self._managed_stale = True  # a quiet poll: re-read managed queues too

    async def _claim_landing(self) -> int:
        """Claim, shielded from stop(): a claim sent may commit whatever this worker does
        next, so its answer is read and the runs it took are known (stop() hands them
        back) instead of staying leased to a stopped worker until the lease expires."""
        self._landing = anyio.CancelScope(shield=True)
        try:
            with self._landing:
                claimed = await self._claim_batch()
        finally:
            self._landing = None
        return claimed

    async def claim_once(self) -> int:
        """Claim the due runs once (as many as there are free slots) and execute each until
        it parks or finishes; return how many ran. For tests that drive the worker step by
        step: the worker must be manual (``Engine(worker="manual")``), claiming only here.
        Errors (a failed claim) are raised, not retried."""
        if self.running:
            raise RuntimeError(
                "claim_once() drives a manual worker; this one claims by itself "
                '(use Engine(worker="manual"))'
            )
        claimed = 0
        if not self._names:
            return claimed
        async with anyio.create_task_group() as beats:
            beats.start_soon(self._heartbeat_loop)  # long executions keep their leases
            try:
                async with anyio.create_task_group() as runs:
                    self._tg = runs
                    started: list[asyncio.Task[None]] = []
                    claimed = await self._claim_batch(started)
                    if started:  # only this claim's: another claim_once may run beside it
                        await asyncio.wait(started)
            finally:
                self._tg = None
                beats.cancel_scope.cancel()
        return claimed

    def _slots_freeing(self) -> bool:
        """True when more work is due, few slots are free and finishes are on the wire:
        claiming once they land takes a batch in one commit, where claiming now would take
        one or two runs per commit. Only under load: an idle worker claims at once."""
        few = self.free_slots < max(1, self.settings.concurrency // 4)
        return self._maybe_more and few and self.runtime.writer.finishes.unanswered > 0

    @property
    def busy(self) -> bool:
        """True while a claim is in flight or a run executes here."""
        return self._claiming or bool(self.active)

    async def _claim_batch(self, started: list[asyncio.Task[None]] | None = None) -> int:
        """Claim as many due runs as there are free slots and start them; return how many.
        The tasks of the executions started are added to ``started``."""
        self._claiming = True
        try:
            return await self._claim_into(started)
        finally:
            self._claiming = False

    async def _claim_into(self, started: list[asyncio.Task[None]] | None) -> int:
        store, limit = self.runtime.store, self.free_slots
        if self._managed_stale:
            self._managed = await store.managed_queues()
            self._managed_stale = False
        fast = [q for q in self.settings.queues if q not in self._managed]
        claimed = 0
        if fast:
            rows = await store.claim(
                self.runtime.worker_id, self.settings.lease_seconds, limit, fast,
                self._names, self._versions, self.settings.max_run_attempts,
            )  # fmt: skip
            claimed += self._start_all(rows, started)  # started at once: a later claim may fail
        for queue in self.settings.queues:
            if queue in self._managed and claimed < limit:
                rows = await self._claim_managed(queue, limit - claimed)
                claimed += self._start_all(rows, started)
        self._maybe_more = claimed == limit
        return claimed

    async def _claim_managed(self, queue: str, room: int) -> list[ClaimedRun]:
        """Claim from one managed queue. Its stored limits may be unusable (a row written
        by hand, an older version): skip the queue, say so once, serve the others."""
        try:
            rows = await self.runtime.store.claim_managed(
                queue, self.runtime.worker_id, self.settings.lease_seconds, room,
                self._names, self._versions, choose_runs, self.settings.max_run_attempts,
            )  # fmt: skip
        except INFRASTRUCTURE_ERRORS:
            raise  # the database, not the queue: the whole claim backs off
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if self._queue_problems.get(queue) != problem:
                self._queue_problems[queue] = problem
                _log.error(
                    "queue %r cannot be claimed from and is skipped until fixed "
                    "(engine.queues.configure): %s", queue, problem, exc_info=exc,
                )  # fmt: skip
            return []
        if self._queue_problems.pop(queue, None) is not None:
            _log.warning("queue %r is claimed from again", queue)
        return rows

    def _start_all(self, rows: list[ClaimedRun], started: list[asyncio.Task[None]] | None) -> int:
        if self._stopping:
            self._unstarted += [row.id for row in rows]
            return len(rows)
        for row in rows:
            try:
                task = self._start(row)
            except Exception:  # a bug: the run is left to its lease, the worker goes on
                _log.exception("could not start an execution of run %s", row.id)
                continue
            if started is not None:
                started.append(task)
        return len(rows)

    def _start(self, row: ClaimedRun) -> asyncio.Task[None]:
        workflow = self.runtime.registry.get(row.workflow_name, row.workflow_version)
        if workflow is None:  # cannot happen: the claim filters on registered pairs
            raise RuntimeError(f"claimed a run of unregistered workflow {row.workflow_name}")
        execution = Execution(self.runtime, row, workflow)
        execution.on_ending = self._claim_ending
        previous = self.active.get(execution.run_id)
        if previous is not None and previous.ending:  # parked and due again already
            self._ending -= 1
        self.active[execution.run_id] = execution
        task = asyncio.get_running_loop().create_task(self._execute(execution))
        self._tasks[execution] = task  # _execute forgets it (no done callback: one turn less)
        return task

    def _cancel_executions(self) -> None:
        for execution in list(self._tasks):
            execution.scope.cancel()

    async def _join(self) -> None:
        """Wait until every execution's task has ended."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))
            # A task cancelled before its first step never ran _execute to forget itself.
            for execution, task in list(self._tasks.items()):
                if task.done():
                    self._tasks.pop(execution, None)

    def _claim_ending(self, execution: Execution) -> None:
        if self.active.get(execution.run_id) is execution:
            self._ending += 1
            if self._maybe_more:
                self._wake.set()

    async def _execute(self, execution: Execution) -> None:
        try:
            await execution.run()
        except Exception:  # run() handles its own; this would be a bug in durable
            _log.exception("run %s: execution ended unexpectedly", execution.run_id)
        finally:
            # By identity: a run this execution parked may already run in a new one here.
            if self.active.get(execution.run_id) is execution:
                del self.active[execution.run_id]
                if execution.ending:
                    self._ending -= 1
            # A parked run has a new wake time: the idle loop must re-read the next timer.
            if self._maybe_more or self._stopping or execution.parked:
                self._wake.set()
            if not self.active:
                self._idle.set()
            self._tasks.pop(execution, None)

    async def _idle_timeout(self) -> float:
        """Sleep until the next known wake time, capped by the fallback poll interval."""
        try:
            seconds = await self.runtime.store.next_wake(
                self.settings.queues, self._names, self._versions
            )
        except Exception as exc:
            report_loop_failure(_log, "reading the next wake time", exc)
            return self.settings.poll_interval
        if seconds is None or math.isnan(seconds):
            return self.settings.poll_interval
        return max(0.0, min(seconds, self.settings.poll_interval))

    async def _heartbeat_loop(self) -> None:
        every = self.settings.heartbeat_seconds
        # A failed heartbeat is retried sooner than the next one is due: leases are short.
        backoff = Backoff(first=min(0.05, every / 4), cap=every)
        wait = every
        while True:
            await anyio.sleep(wait)
            if not self.running and not self.active:
                return
            try:
                await self._heartbeat()
            except Exception as exc:
                wait = backoff.next()
                report_loop_failure(_log, "heartbeat", exc, wait)
                continue
            backoff.reset()
            wait = every

    @property
    def _stale_after(self) -> float:
        return max(STALE_LEASES * self.settings.lease_seconds, STALE_FLOOR_SECONDS)

    async def _heartbeat(self) -> None:
        telemetry = self.runtime.telemetry
        await telemetry.refresh_queue_depth(
            self.runtime.store.count_ready_runs, self.settings.queues
        )
        # Judge only the executions this heartbeat covered: a run claimed (or claimed
        # again) while the statement was on the wire is not missing from it.
        sent = dict(self.active)
        held, known = await self.runtime.store.heartbeat(
            self.runtime.worker_id, self.settings.lease_seconds, list(sent),
            self._stale_after,
        )  # fmt: skip
        if not known:  # silent so long that another worker removed our row
            await self.register()
        for run_id, execution in sent.items():
            if run_id not in held and self._taken(execution):
                _log.warning("run %s: lease lost; cancelling its execution", run_id)
                execution.scope.cancel()
        await self.runtime.sync_clock()

    def _taken(self, execution: Execution) -> bool:
        """Whether a run found no longer held here was taken from ``execution`` (another
        worker, a cancel, a delete). Not when the execution is gone, nor when it is ending
        the claim itself: its own finish or park may have committed while the check was on
        the wire, and that write, fenced by the claim, tells a lost lease by itself."""
        return self.active.get(execution.run_id) is execution and not execution.ending

    async def stop(self) -> None:
        """Stop claiming, let running executions finish within the grace period, then hand
        the rest back so another worker resumes them at once."""
        self._stopping = True
        self._claim_scope.cancel()
        with anyio.move_on_after(self.settings.shutdown_grace_seconds):
            if self.running:  # a claim on the wire lands first: its runs go back below
                await self._loop_ended.wait()
            if self.active:
                self._idle = anyio.Event()
                await self._idle.wait()
        if self._landing is not None:  # unanswered all the grace: its leases will expire
            self._landing.shield = False
        leftover = [*self.active, *self._unstarted]
        self._unstarted.clear()
        self._cancel_executions()
        with anyio.CancelScope(shield=True):
            try:
                if leftover:
                    await self.runtime.store.release(self.runtime.worker_id, leftover)
                await self.runtime.store.unregister_worker(self.runtime.worker_id)
            except Exception as exc:
                report_loop_failure(_log, "handing runs back on shutdown (leases will expire)", exc)
            await self._join()
