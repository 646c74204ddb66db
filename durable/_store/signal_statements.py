"""The store's statements for checking, rejecting, listing and replacing signals.

Mixed into ``Store`` like ``QueueStatements``; the statements live in ``queries.sql``
next to ``consume_signal``. Methods that take ``conn`` run inside a caller's transaction
(``engine.retry`` changes a signal record and requeues the run in one commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from durable._store.pool import ConnectionPool
from durable.sql import query

__all__ = ["SignalStatements"]

Row = asyncpg.Record


class SignalStatements:
    """Typed waits' checks and the signal side of retry; ``Store`` provides ``pool``."""

    pool: ConnectionPool

    async def pending_signals(
        self, run_id: UUID, name: str, deadline: datetime | None, limit: int
    ) -> list[tuple[int, str | None]]:
        """(seq, payload JSON) of the oldest usable signals ``name`` sent before ``deadline``."""
        rows = await self.pool.fetch(query("pending_signals"), run_id, name, deadline, limit)
        return [(r["seq"], r["payload"]) for r in rows]

    async def reject_signals(
        self, run_id: UUID, attempt: int, name: str, rejected: Sequence[tuple[int, str]]
    ) -> bool:
        """Mark signals rejected (seq, reason) under the run's claim; they stay unconsumed.
        False when not all were marked (the claim is lost)."""
        status = await self.pool.execute(
            query("reject_signals"), run_id, attempt, name,
            [seq for seq, _ in rejected], [reason for _, reason in rejected],
        )  # fmt: skip
        return status == f"UPDATE {len(rejected)}"

    async def drop_signal_record(
        self, conn: asyncpg.Connection, run_id: UUID, name: str, reason: str
    ) -> Row | None:
        """Delete the latest record of a wait that consumed ``name`` and reject its signal;
        (cursor_key, seq) of the record, None when there was none."""
        return await conn.fetchrow(query("retry_drop_signal"), run_id, name, reason)

    async def replace_signal_record(
        self,
        conn: asyncpg.Connection,
        run_id: UUID,
        name: str,
        key: str,
        seq: int,
        payload_json: str,
    ) -> None:
        """Record ``payload_json`` as the outcome of the wait at ``key`` (a new signal)."""
        await conn.execute(query("retry_replace_signal"), run_id, name, key, payload_json, seq)
