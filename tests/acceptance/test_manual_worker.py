"""``Engine(worker="manual")``: a worker that claims only when a test says so.

``await engine.worker.claim_once()`` claims the due runs once and executes each until it
parks or finishes, returning how many ran; nothing else claims, so a check that a run did
*not* move needs no sleep.
"""

from __future__ import annotations

import pytest

import durable
from durable import Engine, RunStatus
from durable.testing import Environment, shift_clock
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@durable.step
async def count(label: str) -> str:
    support.CALLS[label] += 1
    return label


@durable.workflow(name="tests.manual.nap")
async def nap() -> str:
    await count("before")
    await durable.sleep("1h")
    return await count("after")


@durable.workflow(name="tests.manual.ask")
async def ask() -> str:
    answer: str = await durable.wait_for_signal("answer", type=str)
    return answer


@durable.workflow(name="tests.manual.quick")
async def quick(n: int) -> int:
    return n * 2


WORKFLOWS = [nap, ask, quick]


def _manual(make_engine: EngineFactory, **options: object) -> Engine:
    return make_engine(*WORKFLOWS, worker="manual", inline_wait_seconds=0.0, **options)


async def test_nothing_runs_until_claim_once(make_engine: EngineFactory) -> None:
    async with _manual(make_engine) as engine:
        assert engine.worker is not None
        handle = await nap.start()
        assert await handle.status() == RunStatus.PENDING
        assert support.CALLS["before"] == 0
        assert await engine.worker.claim_once() == 1
        assert await handle.status() == RunStatus.SLEEPING
        assert support.CALLS["before"] == 1
        assert await engine.worker.claim_once() == 0  # the timer is not due
        assert support.CALLS["after"] == 0


async def test_a_run_due_by_the_database_clock_runs_on_while_this_worker_lags_it(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with _manual(make_engine) as engine:
        assert engine.worker is not None
        handle = await nap.start()
        assert await engine.worker.claim_once() == 1  # parks for its hour
        # The database clock moves on and this worker has not measured it yet (as between
        # shift_clock's two halves, or after the database host's clock stepped forward).
        await engine.runtime.store.shift_clock(2 * 3600)
        assert await engine.worker.claim_once() == 1
        assert await handle.status() == RunStatus.COMPLETED  # not parked again for the hour
        assert await handle.result(timeout=30) == "after"
        assert support.CALLS["before"] == 1
        row = await support.fetch_row(
            database_url, "SELECT attempt FROM durable.runs WHERE id = $1", handle.run_id
        )
        assert row is not None
        assert row["attempt"] == 2


async def test_a_signal_makes_the_waiting_run_claimable(make_engine: EngineFactory) -> None:
    async with _manual(make_engine) as engine:
        assert engine.worker is not None
        handle = await ask.start()
        assert await engine.worker.claim_once() == 1
        assert await handle.status() == RunStatus.WAITING
        await handle.signal("answer", "yes")
        assert await engine.worker.claim_once() == 1
        assert await handle.result(timeout=30) == "yes"


async def test_one_claim_takes_at_most_the_free_slots(make_engine: EngineFactory) -> None:
    async with _manual(make_engine, concurrency=2) as engine:
        assert engine.worker is not None
        handles = [await quick.start(n) for n in range(3)]
        assert await engine.worker.claim_once() == 2
        assert await engine.worker.claim_once() == 1
        assert await engine.worker.claim_once() == 0
        assert sorted([await h.result(timeout=30) for h in handles]) == [0, 2, 4]


async def test_an_automatic_worker_refuses_claim_once(engine: Engine) -> None:
    assert engine.worker is not None
    with pytest.raises(RuntimeError, match="manual"):
        await engine.worker.claim_once()


async def test_the_testing_doc_example(server_dsn: str) -> None:
    async with Environment(server_dsn, workflows=[nap], worker="manual") as env:
        worker = env.engine.worker
        assert worker is not None
        handle = await env.start(nap)
        assert await worker.claim_once() == 1  # ran until the sleep
        await env.engine.pause(handle.run_id)
        assert await shift_clock(env.engine, "2h") == 7200
        assert await worker.claim_once() == 0  # paused: not claimed
        assert await handle.status() == "paused"
        await env.engine.resume(handle.run_id)
        await env.run_until_idle()
        assert await handle.result(timeout=5) == "after"


def test_worker_takes_true_false_or_manual() -> None:
    with pytest.raises(ValueError, match='worker must be True, False or "manual"'):
        Engine("postgresql://unused/db", worker="yes")  # type: ignore[arg-type]
