"""Run notifications reach a process only once something in it waits on runs.

A worker alone hears wake-ups and ``durable_control`` (cancels and pauses, which stop its
executions), not the ``durable_run`` notification of every finish. The first waiter makes
the process listen; a run that changed before the LISTEN took effect is read, not missed.
The waits on a held step are in ``test_notify_is_a_hint``.
"""

from __future__ import annotations

import pytest

from durable import step, workflow
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
