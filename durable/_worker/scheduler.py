"""Cron schedules: exactly one run per tick across any number of workers, with no leader.

Every worker runs a ``Scheduler`` loop. A pass reads the due schedules of the
workflows the worker serves, plans each one's ticks (``cron.plan_ticks``: overlap and
catch-up policies) and then, in one transaction, compare-and-sets the schedule's
``next_fire_at`` and inserts the tick's runs, each under the idempotency key
``schedule:<name>:<tick>``. Workers racing on a tick all plan it; one wins the
compare-and-set and the others find the schedule moved and write nothing. A crash before
the commit leaves the tick due, so the next pass (on any worker) fires it.

The loop wakes at the next tick (by the database clock, which tests shift), on a schedule
change (NOTIFY ``*schedules``), and every ``poll_interval`` otherwise.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from durable._client.management import prune_runs
from durable._client.schedules import (
    RETENTION_CRON,
    RETENTION_SCHEDULE,
    tick_request,
)
from durable._foundation.codec import decode_json, to_json
from durable._foundation.cron import CronSpec, plan_ticks
from durable._foundation.faults import is_infrastructure, report_loop_failure
from durable._foundation.run_ids import new_run_id
from durable._foundation.views import RunStatus
from durable._runs.starting import start_run
from durable._store.listener import Signal
from durable._store.rows import ScheduleRow
from durable.errors import InvalidSchedule

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime
    from durable._workflow.decorators import Workflow

__all__ = ["Scheduler"]

_log = logging.getLogger("durable.schedules")


class Scheduler:
    """A worker's schedule loop: fires the due ticks of the workflows it serves."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = Signal()
        self.running = False
        names = sorted({wf.name for wf in runtime.registry})
        if runtime.settings.retention_seconds is not None:
            names.append(RETENTION_SCHEDULE)
        self._names = names

    def wake(self, what: str = "") -> None:
        """Run a pass soon (on NOTIFY ``*schedules``, or after a reconnect)."""
        if what in ("", "*schedules"):
            self._wake.set()

    async def register(self) -> None:
        """Upsert the ``@workflow(schedule=...)`` schedules and the retention schedule, and
        remove the decorator schedules of served workflows that no longer declare one."""
        unscheduled = self._unscheduled()
        if unscheduled:
            dropped = await self.runtime.store.drop_decorator_schedules(unscheduled)
            if dropped:
                _log.info("removed schedules no longer declared by their workflow: %s", dropped)
        now = await self.runtime.store.db_now()
        for wf in self._scheduled():
            assert wf.schedule is not None
            spec = CronSpec(wf.schedule, wf.timezone)
            await self._upsert(wf.name, wf.name, spec, now, wf.signature.encode_args((), {}))
        seconds = self.runtime.settings.retention_seconds
        if seconds is not None:
            spec = CronSpec(RETENTION_CRON)
            kwargs = {"older_than": seconds}
            input_json = to_json({"args": [], "kwargs": kwargs})
            await self._upsert(RETENTION_SCHEDULE, RETENTION_SCHEDULE, spec, now, input_json)

    def _scheduled(self) -> list[Workflow[Any, Any]]:
        newest = (self.runtime.registry.get(name) for name in self._names)
        return [wf for wf in newest if wf is not None and wf.schedule is not None]

    def _unscheduled(self) -> list[str]:
        """Served workflows whose newest version declares no schedule."""
        newest = (self.runtime.registry.get(name) for name in self._names)
        return [wf.name for wf in newest if wf is not None and wf.schedule is None]

    async def _upsert(
        self, name: str, workflow: str, spec: CronSpec, now: datetime, input_json: str
    ) -> None:
        source = "builtin" if name == RETENTION_SCHEDULE else "decorator"
        await self.runtime.store.upsert_schedule(
            name=name, workflow=workflow, cron=spec.cron, timezone=spec.timezone,
            input_json=input_json, next_fire_at=spec.next_after(now), overlap="skip",
            catch_up="skip_missed", max_catch_up=10, jitter_seconds=0.0, paused=False,
            source=source,
        )  # fmt: skip

    async def run(self) -> None:
        """Fire due ticks until cancelled (the engine's task group ends it)."""
        self.running = True
        try:
            while True:
                await self._wake.wait(await self._pass())
        finally:
            self.running = False

    async def _pass(self) -> float:
        """One pass; returns the seconds to sleep before the next."""
        poll = self.runtime.settings.poll_interval
        try:
            await self.fire_due()
            seconds = await self.runtime.store.next_schedule_wake(self._names)
        except Exception as exc:  # never ends the worker (invariant 8)
            retry_in = min(1.0, poll) if is_infrastructure(exc) else poll
            report_loop_failure(_log, "schedule pass", exc, retry_in)
            return retry_in
        if seconds is None:
            return poll
        return min(max(seconds, 0.01), poll)

    async def fire_due(self) -> int:
        """Fire every due tick now; return the number of runs this worker started."""
        started = 0
        for row in await self.runtime.store.due_schedules(self._names):
            started += await self._fire(row)
        return started

    async def _fire(self, row: ScheduleRow) -> int:
        name = row.name
        try:
            spec = CronSpec(row.cron, row.timezone)
        except InvalidSchedule as exc:
            _log.error("schedule %r is invalid (%s); pausing it", name, exc)
            await self.runtime.store.set_schedule_paused(name, True, None)
            return 0
        last, now = row.last_status, row.now
        if now is None:
            raise RuntimeError(f"schedule {name!r} was read without the database clock")
        plan = plan_ticks(
            spec, now=now, next_fire_at=row.next_fire_at,
            buffered_at=row.buffered_at,
            busy=last is not None and not RunStatus(last).finished,
            overlap=row.overlap, catch_up=row.catch_up, max_catch_up=row.max_catch_up,
        )  # fmt: skip
        runs = [(tick, new_run_id()) for tick in plan.starts]
        store = self.runtime.store
        async with store.transaction() as conn:
            won = await store.advance_schedule(
                conn, name, old_next=row.next_fire_at, old_buffered=row.buffered_at,
                new_next=plan.next_fire_at, new_buffered=plan.buffered_at,
                fired_at=runs[-1][0] if runs else None, run_id=runs[-1][1] if runs else None,
            )  # fmt: skip
            if not won or not runs:
                return 0
            if row.workflow_name != RETENTION_SCHEDULE:
                await self._insert(conn, row, runs)
        if row.workflow_name == RETENTION_SCHEDULE:
            await self._prune(row.input)  # after the commit: a long prune holds no lock
            return 0
        if plan.skipped:
            _log.info("schedule %r skipped %d tick(s) (policy)", name, plan.skipped)
        return len(runs)

    async def _insert(
        self, conn: asyncpg.Connection, row: ScheduleRow, runs: list[tuple[datetime, UUID]]
    ) -> None:
        wf = self.runtime.registry.get(row.workflow_name)
        assert wf is not None  # due_schedules only returns workflows this worker serves
        target = (wf.name, wf.version, wf.queue, wf.timeout)
        jitter = row.jitter_seconds
        for tick, run_id in runs:
            request = tick_request(
                self.runtime, target, row.name, row.input, run_id=run_id,
                idempotency_key=f"schedule:{row.name}:{tick.isoformat()}",
                delay=random.uniform(0, jitter) if jitter > 0 else None,
            )  # fmt: skip
            new_id, _ = await start_run(self.runtime, request, root_span=True, conn=conn)
            if new_id != run_id and run_id == runs[-1][1]:
                await self.runtime.store.set_schedule_last_run(row.name, new_id, conn)

    async def _prune(self, input_json: str) -> None:
        kwargs = (decode_json(input_json) or {}).get("kwargs", {})
        deleted = await prune_runs(self.runtime, float(kwargs["older_than"]))
        _log.info("retention pruned %d finished run(s)", deleted)
