"""The record combiner on its own: concurrent writes combined into one call, each waiter
told its own outcome, and one refused row failing only itself.

No database: ``Combiner`` takes the two write functions, and ``RecordWriter`` a fake store
with the three methods it calls. Writes on Postgres are covered by
``tests/integration/test_record_writer.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from durable._store.record_writer import Combiner, Finish, RecordWriter, StepWrite

pytestmark = pytest.mark.anyio


class Wire:
    """Write functions whose calls are logged and held until the test opens the gate."""

    def __init__(
        self, lost: frozenset[str] = frozenset(), refused: frozenset[str] = frozenset()
    ) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = asyncio.Event()
        self.lost, self.refused = lost, refused
        self.batch_error: Exception | None = None

    async def one(self, item: str) -> bool:
        self.calls.append(("one", [item]))
        await self.gate.wait()
        if item in self.refused:
            raise asyncpg.DataError(f"cannot store {item}")
        return item not in self.lost

    async def many(self, items: Sequence[str]) -> set[Hashable]:
        self.calls.append(("many", list(items)))
        await self.gate.wait()
        if self.batch_error is not None:
            raise self.batch_error
        if self.refused & set(items):
            raise asyncpg.DataError("a row cannot be stored")
        return {item for item in items if item not in self.lost}


def _combiner(wire: Wire, max_in_flight: int = 1) -> Combiner[str]:
    return Combiner(wire.one, wire.many, lambda item: item, max_in_flight=max_in_flight)


async def _on_wire(wire: Wire, count: int) -> None:
    """Yield to the loop until ``count`` calls reached the wire."""
    for _ in range(1000):
        if len(wire.calls) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(wire.calls)} calls on the wire, expected {count}")


async def _queued(combiner: Combiner[Any], count: int) -> None:
    """Yield to the loop until ``count`` writes wait behind the one on the wire."""
    for _ in range(1000):
        if len(combiner._queue) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(combiner._queue)} writes queued, expected {count}")


async def _behind_one(
    combiner: Combiner[str], wire: Wire, first: str, rest: str
) -> tuple[asyncio.Task[bool], list[asyncio.Task[bool]]]:
    """``first`` alone on the wire, then each of ``rest`` queued behind it."""
    alone = asyncio.ensure_future(combiner.write(first))
    await _on_wire(wire, 1)
    queued = [asyncio.ensure_future(combiner.write(item)) for item in rest]
    await _queued(combiner, len(rest))
    return alone, queued


async def test_a_lone_write_goes_out_at_once_on_its_own() -> None:
    wire = Wire()
    wire.gate.set()
    assert await _combiner(wire).write("a") is True
    assert wire.calls == [("one", ["a"])]


async def test_writes_made_in_one_turn_of_the_loop_leave_together() -> None:
    # Executions claimed together reach their writes in the same turn of the loop: the
    # first must not leave alone and make the others wait a round trip behind it.
    wire = Wire(lost=frozenset("c"))
    combiner = _combiner(wire)
    writes = [asyncio.ensure_future(combiner.write(item)) for item in "abcd"]
    await _on_wire(wire, 1)
    wire.gate.set()
    assert [await w for w in writes] == [True, True, False, True]
    assert wire.calls == [("many", ["a", "b", "c", "d"])]
    await combiner.close()


async def test_writes_queued_behind_a_busy_wire_leave_together() -> None:
    wire = Wire(lost=frozenset("c"))
    combiner = _combiner(wire)
    first, rest = await _behind_one(combiner, wire, "a", "bcd")
    wire.gate.set()
    assert await first is True
    assert [await w for w in rest] == [True, False, True]  # each learns its own outcome
    assert wire.calls == [("one", ["a"]), ("many", ["b", "c", "d"])]
    await combiner.close()


async def test_max_in_flight_writes_go_out_alone_before_any_queue() -> None:
    wire = Wire()
    combiner = _combiner(wire, max_in_flight=2)
    writes = []
    for n, item in enumerate("ab", start=1):
        writes.append(asyncio.ensure_future(combiner.write(item)))
        await _on_wire(wire, n)
    writes.append(asyncio.ensure_future(combiner.write("c")))
    await _queued(combiner, 1)
    wire.gate.set()
    assert [await w for w in writes] == [True, True, True]
    assert wire.calls == [("one", ["a"]), ("one", ["b"]), ("one", ["c"])]  # a batch of one


async def test_a_burst_leaves_in_batches_of_at_most_max_batch_items() -> None:
    wire = Wire()
    wire.gate.set()
    combiner = Combiner(wire.one, wire.many, lambda item: item, max_batch=3)
    assert await asyncio.gather(*(combiner.write(item) for item in "abcdefg")) == [True] * 7
    assert wire.calls == [("many", ["a", "b", "c"]), ("many", ["d", "e", "f"]),
                          ("one", ["g"])]  # fmt: skip


async def test_a_burst_leaves_in_batches_of_bounded_bytes() -> None:
    wire = Wire()
    wire.gate.set()
    combiner = Combiner(wire.one, wire.many, lambda item: item, size=len, max_batch_bytes=6)
    items = ["aaa", "bbb", "ccc", "dddddddd", "e"]  # an item over the cap still goes, alone
    assert await asyncio.gather(*(combiner.write(item) for item in items)) == [True] * 5
    assert wire.calls == [("many", ["aaa", "bbb"]), ("one", ["ccc"]), ("one", ["dddddddd"]),
                          ("one", ["e"])]  # fmt: skip


async def test_a_row_postgres_refuses_fails_only_its_own_waiter() -> None:
    wire = Wire(refused=frozenset("c"))
    combiner = _combiner(wire)
    first, rest = await _behind_one(combiner, wire, "a", "bcd")
    wire.gate.set()
    assert await first is True
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert outcomes[0] is True
    assert isinstance(outcomes[1], asyncpg.DataError)
    assert outcomes[2] is True
    # The combined write was refused, then each row went alone.
    assert wire.calls[1:] == [("many", ["b", "c", "d"]), ("one", ["b"]), ("one", ["c"]),
                              ("one", ["d"])]  # fmt: skip


async def test_any_other_error_of_a_combined_write_reaches_every_waiter() -> None:
    wire = Wire()
    wire.batch_error = ConnectionResetError("lost")
    combiner = _combiner(wire)
    first, rest = await _behind_one(combiner, wire, "a", "bc")
    wire.gate.set()
    assert await first is True
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert all(isinstance(o, ConnectionResetError) for o in outcomes)
    assert [kind for kind, _ in wire.calls] == ["one", "many"]  # not retried row by row


async def test_a_queued_write_is_sent_even_when_its_waiter_is_cancelled() -> None:
    wire = Wire()
    combiner = _combiner(wire)
    first = asyncio.ensure_future(combiner.write("a"))
    await _on_wire(wire, 1)
    queued = asyncio.ensure_future(combiner.write("b"))
    await _queued(combiner, 1)
    queued.cancel()
    wire.gate.set()
    assert await first is True
    await combiner.close()
    assert wire.calls == [("one", ["a"]), ("one", ["b"])]  # its claim fence decides


class FakeStore:
    """The three store methods ``RecordWriter`` calls, logging what they were given."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[tuple[str, list[object]]] = []
        self.lost_runs: set[UUID] = set()

    async def record_step(self, write: StepWrite) -> bool:
        self.calls.append(("record_step", [write.key]))
        await self.gate.wait()
        return write.run_id not in self.lost_runs

    async def record_steps(self, writes: Sequence[StepWrite]) -> set[Hashable]:
        self.calls.append(("record_steps", [w.key for w in writes]))
        await self.gate.wait()
        return {(w.run_id, w.key) for w in writes if w.run_id not in self.lost_runs}

    async def finish_runs(self, finishes: Sequence[Finish]) -> set[UUID]:
        self.calls.append(("finish_runs", [f.status for f in finishes]))
        await self.gate.wait()
        return {f.run_id for f in finishes if f.run_id not in self.lost_runs}


def _step(run_id: UUID, key: str) -> StepWrite:
    return StepWrite(run_id=run_id, run_attempt=1, key=key, seq=0, kind="step", name=key,
                     status="completed", output_json="1")  # fmt: skip


async def test_the_record_writer_combines_step_records_of_concurrent_runs() -> None:
    store = FakeStore()
    writer = RecordWriter(store)  # type: ignore[arg-type]
    runs = [uuid4() for _ in range(4)]
    store.lost_runs = {runs[2]}
    writes = [asyncio.ensure_future(writer.steps.write(_step(runs[0], "step:s#0")))]
    for _ in range(100):  # until the first is alone on the wire
        if store.calls:
            break
        await asyncio.sleep(0)
    writes += [asyncio.ensure_future(writer.steps.write(_step(r, f"step:s#{n}")))
               for n, r in enumerate(runs[1:], start=1)]  # fmt: skip
    await _queued(writer.steps, 3)  # three queued behind it
    store.gate.set()
    assert [await w for w in writes] == [True, True, False, True]
    assert store.calls == [
        ("record_step", ["step:s#0"]),
        ("record_steps", ["step:s#1", "step:s#2", "step:s#3"]),
    ]
    await writer.close()


async def test_the_record_writer_finishes_a_lone_run_through_the_batch_statement() -> None:
    store = FakeStore()
    store.gate.set()
    writer = RecordWriter(store)  # type: ignore[arg-type]
    run_id = uuid4()
    finish = Finish(run_id=run_id, run_attempt=1, status="completed", output_json="1",
                    error_json=None)  # fmt: skip
    assert await writer.finishes.write(finish) is True
    store.lost_runs = {run_id}
    assert await writer.finishes.write(finish) is False  # its claim was lost
    assert store.calls == [("finish_runs", ["completed"]), ("finish_runs", ["completed"])]
