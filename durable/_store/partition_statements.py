"""The store's statements for the partitioned history layout (part of ``Store``).

Mixed into ``Store`` like ``QueueStatements``; the statements live in ``queries.sql``
under "The partitioned history layout", and the work is done by the SQL functions of
migration 0011.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from durable._store.pool import ConnectionPool
from durable.sql import query

__all__ = ["HistoryLayout", "HistoryPartition", "PartitionStatements", "partition_history"]


@dataclass(frozen=True, slots=True)
class HistoryLayout:
    """The partitioned layout's settings: each partition covers ``period_seconds``, and
    the engine keeps ``ahead`` periods created ahead of the clock."""

    period_seconds: float
    ahead: int


@dataclass(frozen=True, slots=True)
class HistoryPartition:
    """One time partition of ``durable.steps``: the run ids in [lo, hi), started in
    [starts_at, ends_at)."""

    name: str
    lo: UUID
    hi: UUID
    starts_at: datetime
    ends_at: datetime


async def partition_history(conn: asyncpg.Connection, period_seconds: float, ahead: int) -> bool:
    """Switch the (migrated, empty) database behind ``conn`` to the partitioned layout;
    False when it already was. ``asyncpg.ObjectNotInPrerequisiteStateError`` once it
    holds runs (nothing changes)."""
    switched: bool = await conn.fetchval(query("partition_history"), period_seconds, ahead)
    if switched:  # the new durable.steps has none of the old table's triggers
        await conn.execute(query("step_event_triggers"))
    return switched


class PartitionStatements:
    """Layout, creation ahead, listing and dropping; ``Store`` provides ``pool``."""

    pool: ConnectionPool

    async def history_layout(self) -> HistoryLayout | None:
        """The partitioned layout's settings (None: ``durable.steps`` is one table)."""
        row = await self.pool.fetchrow(query("history_layout"))
        return None if row is None else HistoryLayout(row["period_seconds"], row["ahead"])

    async def ensure_history_partitions(self, ahead: int) -> int:
        """Create the missing partitions up to ``ahead`` periods from now; how many."""
        made = await self.pool.fetchval(query("ensure_history_partitions"), ahead)
        return int(made or 0)

    async def history_partitions(self, ended_before: float | None = None) -> list[HistoryPartition]:
        """The time partitions, oldest first; with ``ended_before``, only those whose
        period ended at least that many seconds ago."""
        rows = await self.pool.fetch(query("history_partitions"), ended_before)
        return [HistoryPartition(*row) for row in rows]

    async def drop_history_partition(self, name: str, older_than: float) -> int | None:
        """Drop partition ``name`` and its runs when every run in it finished more than
        ``older_than`` seconds ago; the runs deleted, or None when it is kept."""
        deleted = await self.pool.fetchval(query("drop_history_partition"), name, older_than)
        return None if deleted is None else int(deleted)
