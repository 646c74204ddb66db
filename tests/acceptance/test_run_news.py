"""Run notifications reach a process only once something in it waits on runs.

A worker alone hears wake-ups and ``durable_control`` (cancels and pauses, which stop its
executions), not the ``durable_run`` notification of every finish. The first waiter makes
the process listen; a run that changed before the LISTEN took effect is read, not missed.
The waits on a held step are in ``test_notify_is_a_hint``.
"""

from __future__ import annotations

import gc
import uuid

import pytest

from durable import step, workflow
from durable._store.listener import _SWEEP_FLOOR as SWEEP_FLOOR
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@step(name="run_news.double")
async def double(x: int) -> int:
    return 2 * x


@workflow(name="run_news.doubler")
async def doubler(x: int) -> int:
    return await double(x)


async def test_a_worker_hears_run_news_only_once_a_result_is_awaited(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(doubler) as engine:
        listener = engine.runtime.listener
        assert listener.connected
        handle = await engine.start(doubler, 21)
        await support.wait_for_status(handle, "completed")
        assert not listener.hears_runs  # the run finished unheard: nothing waited on it
        # Finished before anything listened: the waiter reads the row.
        assert await handle.result(timeout=30) == 42
        assert listener.hears_runs
        # From now on a start subscribes before its run exists.
        assert await (await engine.start(doubler, 5)).result(timeout=30) == 10


async def test_awaited_results_leave_no_subscription_behind(make_engine: EngineFactory) -> None:
    """A service that starts runs and awaits their results for months must not keep one
    subscription per run it ever awaited."""
    async with make_engine(doubler) as engine:
        listener = engine.runtime.listener
        await listener.hear_runs()  # so each start subscribes before its insert
        handles = [await engine.start(doubler, n) for n in range(20)]
        assert [await h.result(timeout=30) for h in handles] == [2 * n for n in range(20)]
        del handles
        gc.collect()
        assert listener.subscriptions == 0


async def test_abandoned_subscriptions_do_not_pile_up(make_engine: EngineFactory) -> None:
    """Handles never awaited, and starts that returned an existing run, leave nothing that
    grows without bound (no worker here: no run finishes, so nothing else clears them)."""
    async with make_engine(doubler, worker=False) as engine:
        listener = engine.runtime.listener
        await listener.hear_runs()
        run_id = uuid.uuid4()
        first = await engine.start(doubler, 1, run_id=run_id)
        again = await engine.start(doubler, 1, run_id=run_id)
        assert (first.created, again.created) == (True, False)
        assert listener.subscriptions == 1  # the first handle's, for its result()
        del first, again
        for _ in range(3 * SWEEP_FLOOR):
            listener.subscribe(uuid.uuid4())  # dropped at once, never unsubscribed
        gc.collect()
        assert listener.subscriptions <= SWEEP_FLOOR + 1
