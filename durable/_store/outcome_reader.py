"""The outcome reads of ``handle.result()`` waiters, combined into one statement.

Every waiter of a client re-reads its run's row when a notification wakes it (a hint,
never the outcome) and on a fallback interval. Under load those reads come in bursts: a
lone read goes out at the end of the loop's turn (no timer), and the reads of one turn, or
made while one is on the wire, leave together as one ``WHERE id = ANY(...)`` read: one
round trip and one commit for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from durable._store.batching import Batcher
from durable._store.rows import RunOutcome
from durable._store.store import Store
from durable.sql import query

__all__ = ["OutcomeReader", "run_outcomes"]


async def run_outcomes(store: Store, run_ids: Sequence[UUID]) -> dict[UUID, RunOutcome]:
    """The status, output and error of each of ``run_ids`` that exists, in one read."""
    rows = await store.pool.fetch(query("run_outcomes"), list(run_ids))
    return {row["id"]: RunOutcome.of(row) for row in rows}


class OutcomeReader(Batcher[UUID, RunOutcome | None]):
    """One client's run-outcome reads: alone while the wire is free, together while busy."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def read(self, run_id: UUID) -> RunOutcome | None:
        """The run's status, output and error; None when no such run exists."""
        return await self._submit(run_id)

    async def _outcomes(self, items: list[UUID]) -> list[RunOutcome | Exception | None]:
        try:
            found = await run_outcomes(self._store, items)
        except Exception as exc:
            return [exc] * len(items)
        return [found.get(run_id) for run_id in items]
