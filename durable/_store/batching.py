"""Calls combined under load into one statement: the queueing of the write combiners and
of the outcome reader.

An item is sent at the end of the loop's current turn, so a lone call waits no longer,
and the items of one turn leave together. While ``max_in_flight`` batches are on the
wire, further items queue and leave together when one frees up. Subclasses say what a
batch sends and what each of its items gets back (``_outcomes``).

A call that finds the wire free leads: it yields once (the end of the turn), and when no
other call joined it, sends its item from its own task. That lone path, the one-step
latency path, costs no future, task or extra turn of the loop; a batch costs one task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")
V = TypeVar("V")


class Batcher(Generic[T, V]):
    """Sends items one by one while the wire is free, in batches while it is busy."""

    def __init__(
        self,
        *,
        max_in_flight: int = 1,
        max_batch: int = 500,
        size: Callable[[T], int] | None = None,
        max_batch_bytes: int = 16 << 20,
    ) -> None:
        self._max_in_flight = max_in_flight
        # A burst leaves in statements of bounded rows and bytes (``size`` gives an item's
        # payload bytes), not one statement of everything queued.
        self._max_batch, self._size, self._max_bytes = max_batch, size, max_batch_bytes
        self._in_flight = 0
        self._leading = False
        """True while a call that found the wire free waits for the end of the turn."""
        self._queue: list[tuple[T, asyncio.Future[V]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _outcomes(self, items: list[T]) -> list[V | Exception]:
        """Send ``items`` (one or more); each one's answer or its error, in order."""
        raise NotImplementedError

    async def _submit(self, item: T) -> V:
        if not self._queue and not self._leading and self._in_flight < self._max_in_flight:
            return await self._lead(item)
        waiter: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queue.append((item, waiter))
        # A queued item is sent even if its caller is cancelled (which cancels only the
        # waiter, skipped when the answer comes): a write's fence decides, and a read
        # costs the others in its batch nothing. No shield: it would cost a future and
        # two callbacks per item.
        return await waiter

    async def _lead(self, item: T) -> V:
        """Send ``item`` at the end of this turn of the loop: alone, from this task, or in
        one batch with the calls made meanwhile (which queued behind it)."""
        self._leading = True
        try:
            await asyncio.sleep(0)  # every call made in this turn runs before this returns
        except BaseException:
            self._leading = False
            self._next()  # cancelled: the calls queued behind this one still leave
            raise
        self._leading = False
        if self._queue:  # joined: all leave in one batch, this call's answer like theirs
            waiter: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            self._queue.insert(0, (item, waiter))
            self._next()
            return await waiter
        # Alone: sent from this task, so cancelling it cancels its own statement only.
        self._in_flight += 1
        try:
            (outcome,) = await self._outcomes([item])
        finally:
            self._in_flight -= 1
            self._next()  # what queued meanwhile
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _next(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            count = self._batch_length()
            batch, self._queue = self._queue[:count], self._queue[count:]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _batch_length(self) -> int:
        """How many queued items the next batch takes: at most ``max_batch``, and no more
        than fit in ``max_batch_bytes`` (always at least one)."""
        count = min(len(self._queue), self._max_batch)
        if self._size is None:
            return count
        total = 0
        for n, (item, _) in enumerate(self._queue[:count]):
            total += self._size(item)
            if total > self._max_bytes and n:
                return n
        return count

    async def _flush(self, batch: list[tuple[T, asyncio.Future[V]]]) -> None:
        try:
            outcomes = await self._outcomes([item for item, _ in batch])
        except BaseException:
            for _, waiter in batch:
                waiter.cancel()
            raise
        else:
            for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                if waiter.done():
                    continue
                if isinstance(outcome, Exception):
                    waiter.set_exception(outcome)
                else:
                    waiter.set_result(outcome)
        finally:
            self._in_flight -= 1
            self._next()

    async def close(self) -> None:
        """Wait for the items accepted so far: the batches on the wire, and the items
        queued for the end of this turn of the loop (sent now). A call sending its item
        alone is awaited by its caller, not here."""
        self._next()
        # A batch that finishes sends what queued behind it before it is done.
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
