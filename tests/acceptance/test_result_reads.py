"""``handle.result()`` waiters of one client read their runs' outcomes together.

A client with no worker (the usual web-app setup) reads a run's row whenever a waiter
wakes. The reads asked in one turn of the loop, or while one is on the wire, leave
together as one ``WHERE id = ANY(...)`` statement; each still gets its own run's outcome,
``RunNotFound`` for its own missing run, or its own timeout. The fallback polls of waiting
handles fall on the same instants, so they leave together too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import anyio
import pytest

import durable
from durable import Client, Engine, RunHandle
from durable._store import outcome_reader
from durable._store.rows import RunOutcome
from durable._store.store import Store
from durable.errors import RunCancelled, RunNotFound, WorkflowFailed
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@durable.workflow(name="tests.result_reads.double")
async def double(n: int) -> int:
    return n * 2


@durable.workflow(name="tests.result_reads.boom")
async def boom(n: int) -> int:
    raise ValueError(f"boom {n}")


@durable.workflow(name="tests.result_reads.held")
async def held(n: int) -> int:
    extra: int = await durable.wait_for_signal("go", type=int)
    return n + extra


WORKFLOWS = [double, boom, held]


class Statements:
    """Counts the combined outcome statements and the run ids they carried."""

    def __init__(self) -> None:
        self.batches: list[int] = []


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Statements:
    seen = Statements()
    real: Callable[[Store, Sequence[UUID]], Awaitable[dict[UUID, RunOutcome]]]
    real = outcome_reader.run_outcomes

    async def counted(store: Store, run_ids: Sequence[UUID]) -> dict[UUID, RunOutcome]:
        seen.batches.append(len(run_ids))
        return await real(store, run_ids)

    monkeypatch.setattr(outcome_reader, "run_outcomes", counted)
    return seen


@asynccontextmanager
async def _client_and_worker(
    make_engine: EngineFactory, database_url: str
) -> AsyncIterator[tuple[Client, Engine]]:
    async with (
        Client(database_url, workflows=WORKFLOWS) as client,
        make_engine(*WORKFLOWS, worker="manual", inline_wait_seconds=0.0) as worker,
    ):
        yield client, worker


async def _drain(engine: Engine) -> None:
    """Run everything due until nothing is."""
    assert engine.worker is not None
    while await engine.worker.claim_once():
        pass


async def _gather(handles: Sequence[RunHandle[Any]], **options: Any) -> list[Any]:
    """Every handle's result, or the exception it raised, in order, waited concurrently."""
    outcomes: list[Any] = [None] * len(handles)

    async def one(i: int) -> None:
        try:
            outcomes[i] = await handles[i].result(**options)
        except Exception as exc:
            outcomes[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(len(handles)):
            tg.start_soon(one, i)
    return outcomes


async def test_finished_runs_are_read_in_one_statement_each_one_its_own_outcome(
    make_engine: EngineFactory, database_url: str, statements: Statements
) -> None:
    async with _client_and_worker(make_engine, database_url) as (client, worker):
        ids = [(await client.start(double, n)).run_id for n in range(10)]
        ids += [(await client.start(boom, n)).run_id for n in range(5)]
        cancelled = [(await client.start(held, n)).run_id for n in range(5)]
        await _drain(worker)
        for run_id in cancelled:
            assert await client.cancel(run_id)
        unknown = uuid4()
        handles = [client.handle(i) for i in [*ids, *cancelled, unknown]]
        statements.batches.clear()

        outcomes = await _gather(handles)

    assert outcomes[:10] == [n * 2 for n in range(10)]
    for n, failed in enumerate(outcomes[10:15]):
        assert isinstance(failed, WorkflowFailed)
        assert failed.error.message == f"boom {n}"
    assert all(isinstance(o, RunCancelled) for o in outcomes[15:20])
    assert isinstance(outcomes[20], RunNotFound)
    assert outcomes[20].run_id == unknown
    # Reads asked in one turn of the loop, or while one is on the wire, leave together.
    assert sum(statements.batches) == 21
    assert len(statements.batches) <= 2


async def test_waiters_woken_by_notify_each_get_their_outcome(
    make_engine: EngineFactory, database_url: str, statements: Statements
) -> None:
    async with _client_and_worker(make_engine, database_url) as (client, worker):
        handles = [await client.start(double, n) for n in range(20)]
        handles += [await client.start(boom, n) for n in range(5)]
        outcomes: list[Any] = []

        async def wait_all() -> None:
            outcomes.extend(await _gather(handles))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_all)
            await _drain(worker)

    assert outcomes[:20] == [n * 2 for n in range(20)]
    assert all(isinstance(o, WorkflowFailed) for o in outcomes[20:])
    assert sum(statements.batches) <= len(handles)


async def test_one_waiter_timing_out_leaves_the_others_their_outcomes(
    make_engine: EngineFactory, database_url: str, statements: Statements
) -> None:
    async with _client_and_worker(make_engine, database_url) as (client, worker):
        handles = [await client.start(held, n) for n in range(10)]
        await _drain(worker)  # all parked on their signal
        stuck = client.handle(handles[0].run_id)
        timed_out: list[BaseException] = []
        outcomes: list[Any] = []

        async def wait_stuck() -> None:
            try:
                await stuck.result(timeout=0.2)
            except TimeoutError as exc:
                timed_out.append(exc)

        async def wait_rest() -> None:
            outcomes.extend(await _gather(handles[1:]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_rest)
            tg.start_soon(wait_stuck)
            for handle in handles[1:]:
                await handle.signal("go", 100)
            await _drain(worker)

    assert len(timed_out) == 1
    assert outcomes == [n + 100 for n in range(1, 10)]


async def test_a_waiter_cancelled_while_its_read_is_queued_leaves_the_batch_intact(
    make_engine: EngineFactory, database_url: str, statements: Statements
) -> None:
    async with _client_and_worker(make_engine, database_url) as (client, worker):
        handles = [await client.start(double, n) for n in range(6)]
        await _drain(worker)
        reader = client.runtime.reader
        answers: dict[int, Any] = {}

        async def read(i: int) -> None:
            # Deadline 0: the read is cancelled at its first wait, already queued.
            with anyio.move_on_after(0 if i == 3 else None):
                answers[i] = await reader.read(handles[i].run_id)

        async with anyio.create_task_group() as tg:
            for i in range(len(handles)):
                tg.start_soon(read, i)

    assert sorted(answers) == [0, 1, 2, 4, 5]
    assert all(answers[i].output == str(i * 2) for i in answers)


async def test_fallback_polls_of_waiters_started_apart_are_read_together(
    make_engine: EngineFactory, database_url: str, statements: Statements
) -> None:
    # No worker, and the runs finish by a plain UPDATE that notifies no one: only the
    # fallback poll can see them.
    async with make_engine(*WORKFLOWS, worker="manual", poll_interval=0.1) as engine:
        handles = [await engine.start(double, n) for n in range(8)]
        asks = 0
        polled = anyio.Event()
        reader = engine.runtime.reader
        read = reader.read

        async def counted(run_id: UUID) -> RunOutcome | None:
            nonlocal asks
            asks += 1
            if asks >= 3 * len(handles):  # every waiter polled a few times
                polled.set()
            return await read(run_id)

        reader.read = counted  # type: ignore[method-assign]
        outcomes: list[Any] = [None] * len(handles)

        async def wait(i: int) -> None:
            outcomes[i] = await handles[i].result()

        async with anyio.create_task_group() as tg:
            for i in range(len(handles)):
                tg.start_soon(wait, i)
                await anyio.sleep(0.03)  # spread the waiters over the poll interval
            await polled.wait()
            async with engine.runtime.store.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE durable.runs SET status = 'completed', output = '7'"
                    " WHERE id = ANY($1::uuid[])",
                    [h.run_id for h in handles],
                )

    assert outcomes == [7] * len(handles)
    # Apart, every poll would be its own statement; aligned, they share few.
    assert len(statements.batches) * 2 < asks


async def test_waiters_of_runs_this_process_finishes_take_the_handover_without_reading(
    make_engine: EngineFactory, statements: Statements
) -> None:
    # A long poll interval: only a notification or the handover wakes a waiter. Whichever
    # of the two comes first, the outcome comes from the execution that committed it.
    async with make_engine(*WORKFLOWS, worker="manual", poll_interval=60.0) as engine:
        # A process that awaited a result before hears run notifications: its starts
        # subscribe before their runs exist, so their waiters never read the row.
        await engine.runtime.listener.hear_runs()
        handles = [await engine.start(double, n) for n in range(30)]
        handles += [await engine.start(boom, n) for n in range(10)]
        outcomes: list[Any] = []

        async def wait_all() -> None:
            outcomes.extend(await _gather(handles))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_all)
            await _drain(engine)

    assert outcomes[:30] == [n * 2 for n in range(30)]
    assert all(isinstance(o, WorkflowFailed) for o in outcomes[30:])
    assert statements.batches == []
