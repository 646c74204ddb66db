"""Writes of concurrent executions, combined into one statement and one commit.

A lone write goes out at the end of the loop's current turn, so a sequential workflow pays
no extra latency, and writes made in the same turn leave together. While
``max_in_flight`` writes of a kind are on the wire, further ones queue and leave together
as one multi-row statement when a writer frees up (``Batcher``): under load a worker
commits many step records (or run finishes) at a time instead of one per round trip.
Each row is still fenced by its own run's claim, and each waiter learns whether its own
row was written.
A combined write that Postgres refuses for its data is retried row by row, so one row
that cannot be stored fails only its own waiter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, TypeVar
from uuid import UUID

import asyncpg

from durable._store.batching import Batcher

if TYPE_CHECKING:
    from durable._store.store import Store

__all__ = [
    "UNSTORABLE_ERRORS",
    "Combiner",
    "Finish",
    "PendingRecord",
    "RecordWriter",
    "StepWrite",
]

T = TypeVar("T")

# "Postgres refuses this row's data": retrying cannot help (unlike TRANSIENT_ERRORS in
# _store), so the run's outcome is that it cannot be stored. Bad values (22xxx, including
# asyncpg's own refusal to encode an argument), program limits such as an index entry
# over its size (54xxx) and constraint violations (23xxx).
UNSTORABLE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.DataError,
    asyncpg.ProgramLimitExceededError,
    asyncpg.IntegrityConstraintViolationError,
)


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A value recorded by a synchronous call, not yet written."""

    key: str
    seq: int
    kind: str
    name: str
    output_json: str


class StepWrite(NamedTuple):
    """One step record to write under the claim ``(run_id, run_attempt)``. A tuple, as
    ``Finish``: one is built per step, and a frozen dataclass costs five times as much."""

    run_id: UUID
    run_attempt: int
    key: str
    seq: int
    kind: str
    name: str
    status: str
    output_json: str | None = None
    error_json: str | None = None
    step_attempt: int = 1
    retry_in: float | None = None
    started_at: datetime | None = None


class Finish(NamedTuple):
    """A run's final status to store under the claim ``(run_id, run_attempt)``."""

    run_id: UUID
    run_attempt: int
    status: str
    output_json: str | None
    error_json: str | None
    cancel_children: bool = False
    """Cancel the run's unfinished descendants in the same statement (a timeout)."""


class Combiner(Batcher[T, bool]):
    """Writes sent one by one while the wire is free, in batches while it is busy."""

    def __init__(
        self,
        one: Callable[[T], Awaitable[bool]],
        many: Callable[[Sequence[T]], Awaitable[set[Hashable]]],
        key: Callable[[T], Hashable],
        *,
        max_in_flight: int = 1,
        alone_on: tuple[type[Exception], ...] = UNSTORABLE_ERRORS,
        max_batch: int = 500,
        size: Callable[[T], int] | None = None,
        max_batch_bytes: int = 16 << 20,
    ) -> None:
        super().__init__(
            max_in_flight=max_in_flight, max_batch=max_batch, size=size,
            max_batch_bytes=max_batch_bytes,
        )  # fmt: skip
        self._one, self._many, self._key = one, many, key
        self._alone_on = alone_on
        self.unanswered = 0
        """Writes accepted and not yet answered (on the wire or queued)."""

    async def write(self, item: T) -> bool:
        """Write ``item``; False when its run's claim was lost (nothing written)."""
        self.unanswered += 1
        try:
            return await self._submit(item)
        finally:
            self.unanswered -= 1

    async def _outcomes(self, items: list[T]) -> list[bool | Exception]:
        """Each item's outcome: written, claim lost, or the error its write raised."""
        if len(items) == 1:
            return [await self._alone(items[0])]
        try:
            written = await self._many(items)
        except Exception as exc:
            if not isinstance(exc, self._alone_on):
                return [exc] * len(items)
            # One row Postgres refuses must not fail the rows combined with it.
            return [await self._alone(item) for item in items]
        return [self._key(item) in written for item in items]

    async def _alone(self, item: T) -> bool | Exception:
        try:
            return await self._one(item)
        except Exception as exc:
            return exc


class RecordWriter:
    """The combined writes of one process's executions: step records and run finishes."""

    def __init__(self, store: Store) -> None:
        self.steps: Combiner[StepWrite] = Combiner(
            store.record_step, store.record_steps, lambda w: (w.run_id, w.key), size=_bytes
        )
        self.finishes: Combiner[Finish] = Combiner(
            self._finish_one, store.finish_runs, lambda f: f.run_id, size=_bytes
        )
        self._store = store

    async def _finish_one(self, finish: Finish) -> bool:
        return finish.run_id in await self._store.finish_runs([finish])

    async def close(self) -> None:
        await self.steps.close()
        await self.finishes.close()


def _bytes(write: StepWrite | Finish) -> int:
    return len(write.output_json or "") + len(write.error_json or "")
