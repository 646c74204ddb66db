"""The durable lifecycle event stream: ``engine.events(...)``, resumable from a cursor.

Triggers (migration 0012) append one row to ``durable.event_log`` per lifecycle transition,
in the transaction that makes it. A reader takes rows in position order ``(xid, seq)``
below its snapshot's xmin (see ``events_after``), so rows never appear behind a position
it has passed: resuming from the cursor of the last event handled yields every later event
once. A notification on ``durable_events`` wakes readers; it is only a hint, and readers
also poll, so a notification lost while the listener reconnects costs latency only. A
read that fails for the infrastructure (a dropped connection, a restarting server) is
retried from the same position: the stream outlives it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from durable._foundation.faults import INFRASTRUCTURE_ERRORS
from durable._store.listener import Signal
from durable._store.pool import ConnectionPool
from durable.sql import query

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = [
    "Batch",
    "EventFilter",
    "EventKind",
    "StreamEvent",
    "check_kinds",
    "decode_position",
    "encode_position",
    "head",
    "read_events",
    "stream_events",
]

_MAX = (1 << 63) - 1
_log = logging.getLogger("durable.events")
_BATCH = 500
_FIRST_RETRY = 0.001


class EventKind(enum.StrEnum):
    """The lifecycle transitions the stream records (a ``str`` enum)."""

    RUN_STARTED = "run.started"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_SUSPENDED = "run.suspended"
    RUN_RESUMED = "run.resumed"
    STEP_COMPLETED = "step.completed"
    STEP_RETRYING = "step.retrying"
    STEP_FAILED = "step.failed"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One lifecycle transition, as committed.

    ``cursor`` is the event's position: pass it as ``since=`` to resume after it.
    ``step``/``step_name`` name the step (cursor key and name) for ``step.*`` kinds;
    ``attempt`` is the run's execution attempt for ``run.*`` kinds and the step's attempt
    for ``step.*`` kinds.
    """

    cursor: str
    kind: str
    run_id: UUID
    workflow: str
    at: datetime
    step: str | None = None
    step_name: str | None = None
    attempt: int | None = None


def encode_position(xid: int, seq: int) -> str:
    """The opaque cursor text of position ``(xid, seq)``."""
    return f"{xid}.{seq}"


def decode_position(cursor: str) -> tuple[int, int]:
    """``(xid, seq)`` of a cursor from ``StreamEvent.cursor``; ValueError when malformed."""
    if not isinstance(cursor, str):
        raise TypeError(f"since must be an event cursor string, not {type(cursor).__name__}")
    xid, dot, seq = cursor.partition(".")
    if not dot or not xid.isdigit() or not seq.isdigit():
        raise ValueError(f"since={cursor!r} is not an event cursor (use StreamEvent.cursor)")
    position = int(xid), int(seq)
    if max(position) > _MAX:
        raise ValueError(f"since={cursor!r} is not an event cursor (use StreamEvent.cursor)")
    return position


def check_kinds(kinds: Iterable[str] | None) -> list[str] | None:
    """The kinds as a list, each one of ``EventKind``; None for every kind."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        raise TypeError("kinds must be a list of event kinds, not a string")
    known = {k.value for k in EventKind}
    out = [str(k.value if isinstance(k, EventKind) else k) for k in kinds]
    unknown = sorted(set(out) - known)
    if unknown:
        raise ValueError(f"unknown event kinds {unknown}; known: {sorted(known)}")
    return out


@dataclass(slots=True)
class EventFilter:
    """Which events a reader wants (None: any)."""

    workflows: list[str] | None
    run_id: UUID | None
    kinds: list[str] | None


@dataclass(frozen=True, slots=True)
class Batch:
    """What one read returned, and where the next starts."""

    events: list[StreamEvent]
    position: tuple[int, int]
    """The last event returned, or (when the batch is not full) the horizon."""
    full: bool
    held_back: bool
    """Committed events wait above the horizon for an older transaction to end."""
    blocked: bool
    """That transaction is still running (else it has just ended: read again at once)."""


async def read_events(
    pool: ConnectionPool,
    position: tuple[int, int],
    where: EventFilter,
    limit: int = _BATCH,
) -> Batch:
    """The events after ``position``, up to ``limit``."""
    rows = await pool.fetch(
        query("events_after"), *position, where.workflows, where.run_id, where.kinds, limit
    )
    events = [_event(r) for r in rows if r["xid"] is not None]
    held, blocked = bool(rows[0]["held_back"]), bool(rows[0]["blocked"])
    if len(events) < limit:
        horizon = rows[0]["horizon"]
        return Batch(events, max(position, (horizon - 1, _MAX)), False, held, blocked)
    last = rows[-1]
    return Batch(events, (last["xid"], last["seq"]), True, held, blocked)


def _event(row: asyncpg.Record) -> StreamEvent:
    return StreamEvent(
        cursor=encode_position(row["xid"], row["seq"]),
        kind=row["kind"],
        run_id=row["run_id"],
        workflow=row["workflow_name"],
        at=row["at"],
        step=row["step_key"],
        step_name=row["step_name"],
        attempt=row["attempt"],
    )


async def head(runtime: Runtime) -> tuple[int, int]:
    """The position from which only events not yet visible to anyone follow."""
    xid = await runtime.store.pool.fetchval(query("events_head"))
    return int(xid), _MAX


async def stream_events(
    runtime: Runtime,
    start: tuple[int, int],
    where: EventFilter,
    *,
    poll_interval: float,
) -> AsyncIterator[StreamEvent]:
    """Yield events after ``start`` for ever: read, then wait for a notification or the
    poll interval. A reader that stops between two events loses nothing: its last
    event's cursor is where it resumes."""
    wake = Signal()
    unsubscribe = runtime.listener.on_events(lambda _payload: wake.set())
    position = start
    retry = _FIRST_RETRY
    try:
        while True:
            try:
                batch = await read_events(runtime.store.pool, position, where)
            except INFRASTRUCTURE_ERRORS as exc:  # a read is safe to repeat: catch up later
                _log.warning("event stream read failed (%s); retrying", type(exc).__name__)
                await wake.wait(poll_interval)
                continue
            position = batch.position
            for event in batch.events:
                yield event
            if batch.full:
                continue
            if batch.events or not batch.held_back or not batch.blocked:
                retry = _FIRST_RETRY
            if not batch.held_back:
                await wake.wait(poll_interval)
                continue
            # Held back events show up when an older transaction ends, which no one
            # announces: look again soon, less often while nothing comes through.
            await wake.wait(retry)
            retry = min(retry * 2, poll_interval)
    finally:
        unsubscribe()
