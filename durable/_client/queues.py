"""Queues with limits that hold across every worker: concurrency, rate and per-key limits.

A queue with a row in ``durable.queues`` is *managed*. Its runs are claimed in a short
transaction that first locks the queue's row, so the counts it then reads (runs running
under a live lease, first claims within the rate window, running runs per concurrency
key) include every other worker's claims. Unmanaged queues keep the one-statement claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from durable._foundation.validate import name as check_name
from durable._foundation.validate import queue_limits

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = ["QueueConfig", "Queues"]


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The limits of a managed queue (None: no limit of that kind)."""

    name: str
    concurrency: int | None = None
    """At most this many runs of the queue execute at once, across all workers."""
    rate_limit: tuple[int, float] | None = None
    """At most ``n`` runs start per ``per_seconds`` window, across all workers."""
    key_concurrency: int = 1
    """At most this many runs with the same ``concurrency_key`` execute at once."""
    updated_at: datetime | None = None


class Queues:
    """``engine.queues``: configure the limits of queues, read them back."""

    def __init__(self, runtime_of: Any) -> None:
        self._runtime_of = runtime_of

    async def configure(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        rate_limit: tuple[int, float] | None = None,
        key_concurrency: int = 1,
    ) -> QueueConfig:
        """Set a queue's limits (replacing earlier ones); workers apply them at once.

        ``rate_limit=(10, 60)`` allows 10 run starts per 60 seconds. Counts are whole
        numbers >= 1 and the period a finite number of seconds > 0: anything else raises
        ``TypeError`` or ``ValueError`` and stores nothing. Limits are enforced in
        the claim, across every worker, not in each worker's memory.
        """
        queue = check_name("a queue name", name)
        limit, rate, period, per_key = queue_limits(concurrency, rate_limit, key_concurrency)
        runtime: Runtime = self._runtime_of()
        await runtime.store.configure_queue(queue, limit, rate, period, per_key)
        return await self.get(name)

    async def get(self, name: str) -> QueueConfig:
        """The limits of ``name`` (an unmanaged queue has none)."""
        for config in await self.list():
            if config.name == name:
                return config
        return QueueConfig(name)

    async def list(self) -> list[QueueConfig]:
        """Every managed queue with its limits."""
        runtime: Runtime = self._runtime_of()
        rows = await runtime.store.get_queues()
        return [
            QueueConfig(
                name=row["name"],
                concurrency=row["concurrency"],
                rate_limit=None
                if row["rate_limit"] is None
                else (row["rate_limit"], row["rate_period_seconds"]),
                key_concurrency=row["key_concurrency"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]
