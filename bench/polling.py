"""Polling a batch until its runs are done, at little cost to the process that polls.

A batch's ids go into a temporary table of the polling connection once, so each poll
sends none: a poll that sent 1,000 ids as an array cost the polling process about 0.34 ms
of CPU (asyncpg encodes the array), which is 0.07 ms per run at one poll every 5 ms of a
drain of 1,000 runs at 4,000 runs/s, counted in durable's CPU per run (the poll runs in
durable's agent process) and taken from DBOS's threads (the GIL, in DBOS's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import asyncpg

__all__ = ["hold_batch", "poll_count"]


async def hold_batch(conn: asyncpg.Connection, ids: Sequence[Any], sql_type: str) -> int:
    """Keep ``ids`` (of Postgres type ``sql_type``) in ``conn``'s ``pg_temp.batch``; the
    number of transactions that took (for callers that count commits)."""
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS batch (id {sql_type} PRIMARY KEY)")
    await conn.execute("TRUNCATE pg_temp.batch")
    await conn.execute(f"INSERT INTO pg_temp.batch SELECT unnest($1::{sql_type}[])", list(ids))
    return 3  # the three statements above, each its own transaction


async def poll_count(
    conn: asyncpg.Connection, sql: str, target: int, timeout: float, every: float = 0.005
) -> int:
    """Run ``sql`` (a count over ``pg_temp.batch``) every ``every`` seconds until it
    reaches ``target``; the number of polls."""
    polls = 1
    with anyio.fail_after(timeout):
        while await conn.fetchval(sql) < target:
            polls += 1
            await anyio.sleep(every)
    return polls
