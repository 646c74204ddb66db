"""The typed rows the store returns: what callers above the store read, by attribute.

Built from asyncpg records in the store and nowhere else, so a column rename touches the
statement and one constructor here. Frozen and slotted; the one built per claimed run is a
``NamedTuple``, since a frozen dataclass's ``__init__`` costs about five times as much.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg

__all__ = ["ClaimedRun", "RunOutcome", "ScheduleRow"]


class ClaimedRun(NamedTuple):
    """A run this worker just claimed, with everything its execution needs."""

    id: UUID
    workflow_name: str
    workflow_version: int
    input: str
    attempt: int
    queue: str
    deadline_at: datetime | None
    parent_run_id: UUID | None
    traceparent: str | None
    tracestate: str | None
    depth: int
    started_at: datetime | None
    claimed_at: datetime
    """The database time (``durable.now()``) of this claim."""
    lost_executions: int
    exhausted: bool
    """Too many executions lost their lease for nothing: fail it without running it."""
    records: str | None
    """The run's step records as one JSON array (None: none, or exhausted)."""

    @classmethod
    def of(cls, row: asyncpg.Record) -> ClaimedRun:
        return cls(
            row["id"], row["workflow_name"], row["workflow_version"], row["input"],
            row["attempt"], row["queue"], row["deadline_at"], row["parent_run_id"],
            row["traceparent"], row["tracestate"], row["depth"], row["started_at"],
            row["claimed_at"], row["lost_executions"], row["exhausted"], row["records"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A run's status and, once finished, its stored output or error (JSON text)."""

    status: str
    output: str | None
    error: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> RunOutcome:
        return cls(row["status"], row["output"], row["error"])


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A stored schedule, as the scheduler and ``client.schedules`` read it."""

    name: str
    workflow_name: str
    cron: str
    timezone: str
    input: str
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    last_run_id: UUID | None
    last_status: str | None
    overlap: str
    catch_up: str
    max_catch_up: int
    jitter_seconds: float
    paused: bool
    source: str
    buffered_at: datetime | None
    now: datetime | None = None
    """The database clock when a due schedule was read (None when not asked)."""

    @classmethod
    def of(cls, row: asyncpg.Record) -> ScheduleRow:
        get = row.get
        return cls(
            row["name"], row["workflow_name"], row["cron"], row["timezone"], row["input"],
            row["next_fire_at"], get("last_fired_at"), get("last_run_id"), get("last_status"),
            row["overlap"], row["catch_up"], row["max_catch_up"], row["jitter_seconds"],
            get("paused", False), get("source", "api"), row["buffered_at"], get("now"),
        )  # fmt: skip
