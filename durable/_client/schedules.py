"""Cron schedules: exactly one run per tick across any number of workers, with no leader.

Every worker engine runs a ``Scheduler`` loop. A pass reads the due schedules of the
workflows the worker serves, plans each one's ticks (``_cron.plan_ticks``: overlap and
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg

from durable._foundation.codec import decode_json, encode_start_input, to_json
from durable._foundation.cron import CatchUp, CronSpec, Overlap, check_policies, plan_ticks
from durable._foundation.durations import to_seconds
from durable._foundation.faults import is_infrastructure, report_loop_failure
from durable._foundation.limits import check_payload, unstorable_text
from durable._foundation.views import RunStatus
from durable._store.listener import Signal
from durable.errors import InvalidSchedule, ScheduleNotFound

if TYPE_CHECKING:
    from durable._client.handles import RunHandle
    from durable._engine import Engine
    from durable._runs.runtime import Runtime
    from durable._workflow.decorators import Workflow

__all__ = ["RETENTION_SCHEDULE", "ScheduleInfo", "Scheduler", "Schedules"]

RETENTION_SCHEDULE = "durable.retention"
"""The built-in schedule that prunes finished runs when ``Engine(retention=...)`` is set."""
RETENTION_CRON = "*/10 * * * *"
_log = logging.getLogger("durable.schedules")
_NO_INPUT = '{"args": [], "kwargs": {}}'


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule: its definition, policies and state (``engine.schedules``)."""

    name: str
    workflow: str
    cron: str
    timezone: str
    input: Any
    """The arguments every tick passes: ``{"args": [...], "kwargs": {...}}``."""
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    last_run_id: UUID | None
    last_status: RunStatus | None
    """Status of the run the latest tick started (None: none yet, or pruned)."""
    overlap: str
    catch_up: str
    max_catch_up: int
    jitter: float
    paused: bool
    source: str
    """``api`` (engine.schedules.create), ``decorator`` (@workflow) or ``builtin``."""
    buffered_at: datetime | None
    """A tick held back by ``buffer_one`` until the running run finishes."""


def _info(row: asyncpg.Record) -> ScheduleInfo:
    last = row["last_status"]
    return ScheduleInfo(
        name=row["name"],
        workflow=row["workflow_name"],
        cron=row["cron"],
        timezone=row["timezone"],
        input=decode_json(row["input"]),
        next_fire_at=row["next_fire_at"],
        last_fired_at=row["last_fired_at"],
        last_run_id=row["last_run_id"],
        last_status=RunStatus(last) if last is not None else None,
        overlap=row["overlap"],
        catch_up=row["catch_up"],
        max_catch_up=row["max_catch_up"],
        jitter=row["jitter_seconds"],
        paused=row["paused"],
        source=row["source"],
        buffered_at=row["buffered_at"],
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """What a tick starts: a workflow's name, version, queue and timeout."""

    name: str
    version: int
    queue: str
    timeout: float | None


async def _start_tick_run(
    runtime: Runtime,
    conn: asyncpg.Connection | None,
    target: _Target,
    schedule: str,
    input_json: str,
    *,
    run_id: UUID,
    idempotency_key: str | None,
    delay: float | None,
) -> UUID:
    """Insert one run started by ``schedule`` (tagged ``schedule:<name>``); its id."""
    telemetry = runtime.telemetry
    with telemetry.start_workflow(
        target.name, target.version, target.queue, run_id, root=True
    ) as started:
        new_id, created = await runtime.store.insert_run(
            run_id=run_id, workflow=target.name, version=target.version,
            input_json=input_json, queue=target.queue, priority=0,
            tags=[f"schedule:{schedule}"], idempotency_key=idempotency_key,
            parent_run_id=None, parent_cursor=None, delay_seconds=delay,
            timeout_seconds=runtime.settings.run_timeout(target.timeout),
            traceparent=started.traceparent,
            tracestate=started.tracestate, conn=conn,
        )  # fmt: skip
        started.stored(new_id, created)
    return new_id


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

    async def _fire(self, row: asyncpg.Record) -> int:
        name = row["name"]
        try:
            spec = CronSpec(row["cron"], row["timezone"])
        except InvalidSchedule as exc:
            _log.error("schedule %r is invalid (%s); pausing it", name, exc)
            await self.runtime.store.set_schedule_paused(name, True, None)
            return 0
        last = row["last_status"]
        plan = plan_ticks(
            spec, now=row["now"], next_fire_at=row["next_fire_at"],
            buffered_at=row["buffered_at"],
            busy=last is not None and not RunStatus(last).finished,
            overlap=row["overlap"], catch_up=row["catch_up"], max_catch_up=row["max_catch_up"],
        )  # fmt: skip
        runs = [(tick, uuid4()) for tick in plan.starts]
        store = self.runtime.store
        async with store.transaction() as conn:
            won = await store.advance_schedule(
                conn, name, old_next=row["next_fire_at"], old_buffered=row["buffered_at"],
                new_next=plan.next_fire_at, new_buffered=plan.buffered_at,
                fired_at=runs[-1][0] if runs else None, run_id=runs[-1][1] if runs else None,
            )  # fmt: skip
            if not won or not runs:
                return 0
            if row["workflow_name"] != RETENTION_SCHEDULE:
                await self._insert(conn, row, runs)
        if row["workflow_name"] == RETENTION_SCHEDULE:
            await self._prune(row["input"])  # after the commit: a long prune holds no lock
            return 0
        if plan.skipped:
            _log.info("schedule %r skipped %d tick(s) (policy)", name, plan.skipped)
        return len(runs)

    async def _insert(
        self, conn: asyncpg.Connection, row: asyncpg.Record, runs: list[tuple[datetime, UUID]]
    ) -> None:
        wf = self.runtime.registry.get(row["workflow_name"])
        assert wf is not None  # due_schedules only returns workflows this worker serves
        target = _Target(wf.name, wf.version, wf.queue, wf.timeout)
        jitter = row["jitter_seconds"]
        for tick, run_id in runs:
            new_id = await _start_tick_run(
                self.runtime, conn, target, row["name"], row["input"], run_id=run_id,
                idempotency_key=f"schedule:{row['name']}:{tick.isoformat()}",
                delay=random.uniform(0, jitter) if jitter > 0 else None,
            )  # fmt: skip
            if new_id != run_id and run_id == runs[-1][1]:
                await self.runtime.store.set_schedule_last_run(row["name"], new_id, conn)

    async def _prune(self, input_json: str) -> None:
        from durable._client.management import prune_runs

        kwargs = (decode_json(input_json) or {}).get("kwargs", {})
        deleted = await prune_runs(self.runtime, float(kwargs["older_than"]))
        _log.info("retention pruned %d finished run(s)", deleted)


class Schedules:
    """``engine.schedules``: create, list, pause, resume, delete and trigger schedules.

    Works from any engine, with or without a worker; the workers serving a schedule's
    workflow fire its ticks.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def _runtime(self) -> Runtime:
        return self._engine.runtime

    async def create(
        self,
        name: str,
        workflow: Workflow[..., Any] | str,
        cron: str,
        *,
        timezone: str = "UTC",
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        overlap: Overlap = "skip",
        catch_up: CatchUp = "skip_missed",
        max_catch_up: int = 10,
        jitter: float | timedelta | str = 0.0,
        paused: bool = False,
    ) -> ScheduleInfo:
        """Create schedule ``name`` (or replace its definition) to start ``workflow`` with
        ``args``/``kwargs`` at every tick of ``cron`` in ``timezone``.

        ``overlap``: ``skip`` a tick while the previous run is unfinished, ``allow`` it,
        or ``buffer_one`` (hold one tick until the previous run finishes). ``catch_up``
        after downtime: ``skip_missed`` starts one run for the latest missed tick,
        ``run_missed`` one per missed tick, the latest ``max_catch_up``. ``jitter``
        delays each run by a random time up to that long. Raises ``InvalidSchedule`` for
        a bad expression, zone or policy and ``UnknownWorkflow`` for an unknown name.
        A replaced schedule keeps its paused state and, unless its cron or zone changed,
        its next tick.
        """
        _check_name(name)
        spec = CronSpec(cron, timezone)
        seconds = to_seconds(jitter)
        check_policies(overlap, catch_up, max_catch_up, seconds)
        wf, wf_name, _, _, _ = await self._engine._resolve(workflow)
        input_json = _encode_input(wf, tuple(args), dict(kwargs or {}), isinstance(workflow, str))
        check_payload(f"the input of schedule {name!r}", input_json, self._max_input)
        store = self._runtime.store
        await store.upsert_schedule(
            name=name, workflow=wf_name, cron=spec.cron, timezone=spec.timezone,
            input_json=input_json, next_fire_at=spec.next_after(await store.db_now()),
            overlap=overlap, catch_up=catch_up, max_catch_up=max_catch_up,
            jitter_seconds=seconds, paused=paused, source="api",
        )  # fmt: skip
        return await self.get(name)

    @property
    def _max_input(self) -> int:
        return self._runtime.settings.max_input_bytes

    async def get(self, name: str) -> ScheduleInfo:
        """The schedule ``name``; ``ScheduleNotFound`` when there is none."""
        row = await self._runtime.store.get_schedule(name)
        if row is None:
            raise ScheduleNotFound(name)
        return _info(row)

    async def list(self) -> list[ScheduleInfo]:
        """Every schedule, by name."""
        return [_info(row) for row in await self._runtime.store.list_schedules()]

    async def pause(self, name: str) -> ScheduleInfo:
        """Stop firing ``name`` until resumed (a running run is left alone)."""
        if not await self._runtime.store.set_schedule_paused(name, True, None):
            raise ScheduleNotFound(name)
        return await self.get(name)

    async def resume(self, name: str) -> ScheduleInfo:
        """Fire ``name`` again from its next tick after now (ticks missed while paused
        never fire)."""
        info = await self.get(name)
        store = self._runtime.store
        next_fire = CronSpec(info.cron, info.timezone).next_after(await store.db_now())
        if not await store.set_schedule_paused(name, False, next_fire):
            raise ScheduleNotFound(name)
        return await self.get(name)

    async def delete(self, name: str) -> bool:
        """Delete ``name``; False when there was none. Its runs are kept. A decorated
        schedule comes back when a worker serving it starts."""
        return await self._runtime.store.delete_schedule(name)

    async def trigger(self, name: str) -> RunHandle[Any]:
        """Start a run of ``name`` now, outside its cron and whatever its overlap policy;
        it is tagged ``schedule:<name>`` like a tick's run."""
        from durable._client.handles import RunHandle

        row = await self._runtime.store.get_schedule(name)
        if row is None:
            raise ScheduleNotFound(name)
        if row["workflow_name"] == RETENTION_SCHEDULE:
            raise InvalidSchedule("the retention schedule starts no run; use engine.prune()")
        wf, wf_name, version, queue, timeout = await self._engine._resolve(row["workflow_name"])
        target = _Target(wf_name, version, queue, timeout)
        run_id = await _start_tick_run(
            self._runtime, None, target, name, row["input"], run_id=uuid4(),
            idempotency_key=None, delay=None,
        )  # fmt: skip
        await self._runtime.store.set_schedule_last_run(name, run_id)
        return RunHandle(self._engine, run_id, wf)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidSchedule(
            f"a schedule name must be a non-empty string of up to 200 characters: {name!r}"
        )
    if name.startswith("durable."):
        raise InvalidSchedule(f"schedule names starting with 'durable.' are reserved: {name!r}")
    problem = unstorable_text(name)
    if problem is not None:  # InvalidSchedule is a ValueError, as check_text raises
        raise InvalidSchedule(f"Postgres cannot store the schedule name {name!r}: {problem}")


def _encode_input(
    wf: Workflow[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any], by_name: bool
) -> str:
    if wf is None and not args and not kwargs:
        return _NO_INPUT
    signature = None if wf is None else wf.signature
    return encode_start_input(signature, args, kwargs, by_name=by_name)
