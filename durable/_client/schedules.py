"""Schedules as a client manages them: ``client.schedules`` creates, lists, pauses,
resumes, deletes and triggers them; ``ScheduleInfo`` is how one reads back. Workers fire
the ticks (``durable._worker.scheduler``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from durable._foundation.codec import decode_json, encode_start_input
from durable._foundation.cron import CatchUp, CronSpec, Overlap, check_policies
from durable._foundation.durations import to_seconds
from durable._foundation.limits import check_payload, unstorable_text
from durable._foundation.run_ids import new_run_id
from durable._foundation.views import RunStatus
from durable._runs.starting import NewRun, start_run
from durable._store.rows import ScheduleRow
from durable.errors import InvalidSchedule, ScheduleNotFound

if TYPE_CHECKING:
    from durable._client.client import Client
    from durable._client.handles import RunHandle
    from durable._runs.runtime import Runtime
    from durable._workflow.decorators import Workflow

__all__ = ["RETENTION_SCHEDULE", "ScheduleInfo", "Schedules", "tick_request"]

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


def _info(row: ScheduleRow) -> ScheduleInfo:
    last = row.last_status
    return ScheduleInfo(
        name=row.name,
        workflow=row.workflow_name,
        cron=row.cron,
        timezone=row.timezone,
        input=decode_json(row.input),
        next_fire_at=row.next_fire_at,
        last_fired_at=row.last_fired_at,
        last_run_id=row.last_run_id,
        last_status=RunStatus(last) if last is not None else None,
        overlap=row.overlap,
        catch_up=row.catch_up,
        max_catch_up=row.max_catch_up,
        jitter=row.jitter_seconds,
        paused=row.paused,
        source=row.source,
        buffered_at=row.buffered_at,
    )


def tick_request(
    runtime: Runtime,
    workflow: tuple[str, int, str, float | None],
    schedule: str,
    input_json: str,
    *,
    run_id: UUID,
    idempotency_key: str | None,
    delay: float | None,
) -> NewRun:
    """The start of one run by ``schedule`` (tagged ``schedule:<name>``; started with
    ``root_span=True``, a trace of its own); ``workflow`` is (name, version, queue,
    timeout)."""
    name, version, queue, timeout = workflow
    return NewRun(
        run_id=run_id, workflow=name, version=version, queue=queue, input_json=input_json,
        tags=(f"schedule:{schedule}",), idempotency_key=idempotency_key,
        delay_seconds=delay, timeout_seconds=runtime.settings.run_timeout(timeout),
    )  # fmt: skip


class Schedules:
    """``engine.schedules``: create, list, pause, resume, delete and trigger schedules.

    Works from any engine, with or without a worker; the workers serving a schedule's
    workflow fire its ticks.
    """

    def __init__(self, client: Client) -> None:
        self._engine = client

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
        if row.workflow_name == RETENTION_SCHEDULE:
            raise InvalidSchedule("the retention schedule starts no run; use engine.prune()")
        wf, wf_name, version, queue, timeout = await self._engine._resolve(row.workflow_name)
        request = tick_request(
            self._runtime, (wf_name, version, queue, timeout), name, row.input,
            run_id=new_run_id(), idempotency_key=None, delay=None,
        )  # fmt: skip
        run_id, _ = await start_run(self._runtime, request, root_span=True)
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
