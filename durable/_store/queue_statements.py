"""The store's statements for managed queues (part of ``Store``; see ``_queues``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from durable._foundation.validate import queue_limits
from durable._store.pool import ConnectionPool
from durable._store.rows import ClaimedRun
from durable.sql import query

__all__ = ["QueueStatements"]

Chooser = Callable[[asyncpg.Record, asyncpg.Record, int, Sequence[Any], dict[str, int]], list[Any]]


class QueueStatements:
    """Managed-queue statements; mixed into ``Store``, which provides ``pool``."""

    pool: ConnectionPool

    async def managed_queues(self) -> set[str]:
        return {row["name"] for row in await self.pool.fetch(query("managed_queues"))}

    async def configure_queue(
        self,
        name: str,
        concurrency: int | None,
        rate: int | None,
        period: float | None,
        key_concurrency: int,
    ) -> None:
        await self.pool.fetchrow(
            query("configure_queue"), name, concurrency, rate, period, key_concurrency
        )

    async def ensure_queue(self, name: str) -> None:
        await self.pool.execute(query("ensure_queue"), name)

    async def get_queues(self) -> list[asyncpg.Record]:
        return await self.pool.fetch(query("get_queues"))

    async def claim_managed(
        self,
        queue: str,
        worker_id: str,
        lease: float,
        limit: int,
        names: Sequence[str],
        versions: Sequence[int],
        choose: Chooser,
        max_attempts: int = 10,
    ) -> list[ClaimedRun]:
        """Claim due runs of a managed queue under its row lock; ``choose`` picks them
        from (config, load, room, candidates, running per key)."""
        async with self.pool.acquire() as conn, conn.transaction():
            config = await conn.fetchrow(query("lock_queue"), queue)
            if config is None:  # no longer managed: the fast path claims its runs
                return []
            _check_stored(queue, config)
            period = config["rate_period_seconds"] or 0.0
            load = await conn.fetchrow(query("queue_load"), queue, period)
            assert load is not None  # a SELECT of scalar subqueries always has its row
            room = limit
            if config["concurrency"] is not None:
                room = min(room, config["concurrency"] - load["running"])
            if room <= 0:
                return []
            # Over-fetch: runs of a busy key or over the rate are skipped, not claimed.
            candidates = await conn.fetch(
                query("queue_candidates"), queue, room * 4 + 8, list(names), list(versions)
            )
            keys = sorted({c["concurrency_key"] for c in candidates if c["concurrency_key"]})
            running: dict[str, int] = {}
            if keys:
                rows = await conn.fetch(query("running_keys"), queue, keys)
                running = {row["concurrency_key"]: row["running"] for row in rows}
            chosen = choose(config, load, room, candidates, running)
            if not chosen:
                return []
            claimed = await conn.fetch(
                query("claim_ids"), worker_id, lease, [c["id"] for c in chosen], max_attempts
            )
            firsts = [c["id"] for c in chosen if c["first_claim"]]
            if config["rate_limit"] is not None and firsts:
                await conn.execute(query("record_queue_starts"), queue, period, firsts)
        return [ClaimedRun.of(row) for row in claimed]


def _check_stored(queue: str, config: asyncpg.Record) -> None:
    """Refuse a stored row configure() would have refused (written by hand, or by an older
    version): its limits would fail the statements below, or claim without limit."""
    rate = config["rate_limit"]
    try:
        queue_limits(
            config["concurrency"],
            None if rate is None else (rate, config["rate_period_seconds"]),
            config["key_concurrency"],
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"queue {queue!r} has stored limits no worker can use ({exc}); "
            f"set them again with engine.queues.configure({queue!r}, ...)"
        ) from None
