"""``expired`` versus ``buffered``: what a late sender (a payment webhook) is told.

``buffered``: no wait of that name has timed out yet and none is armed. ``expired``: the
latest wait of that name timed out and none is armed now. Either way the signal is stored
for a later wait of the same name. Time is driven by ``durable.testing.Environment``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import durable
from durable import SignalKind, SignalTimeout, workflow
from durable.testing import Environment

pytestmark = pytest.mark.anyio


@workflow
async def payment_then_reconcile() -> dict[str, Any]:
    try:
        paid = await durable.wait_for_signal("paid", timeout="1h")
    except SignalTimeout:
        await durable.sleep("1d")  # the run moves on: nothing waits for "paid" now
        late = await durable.wait_for_signal("paid", timeout="7d")
        return {"late": late}
    await durable.sleep("1d")
    again = await durable.wait_for_signal("paid", timeout="7d")
    return {"paid": paid, "again": again}


@pytest.fixture
async def env(server_dsn: str) -> AsyncIterator[Environment]:
    async with Environment(server_dsn, workflows=[payment_then_reconcile]) as environment:
        yield environment


async def _stored(env: Environment, run_id: Any) -> int:
    detail = await env.engine.get_run(run_id)
    return len([s for s in detail.signals if s.name == "paid"])


async def test_a_signal_after_the_wait_timed_out_and_the_run_moved_on_is_expired(
    env: Environment,
) -> None:
    handle = await env.start(payment_then_reconcile)
    await env.run_until_idle()
    await env.advance("2h")  # the wait times out; the run sleeps a day
    assert await handle.status() == "sleeping"

    late = await env.engine.signal(handle.run_id, "paid", {"amount": 5})
    assert late.kind == SignalKind.EXPIRED
    assert late.accepted
    assert await _stored(env, handle.run_id) == 1

    # Kept for the later wait of the same name, which consumes it.
    await env.advance("1d")
    assert await handle.result(timeout=5) == {"late": {"amount": 5}}


async def test_no_timed_out_wait_means_buffered(env: Environment) -> None:
    handle = await env.start(payment_then_reconcile)
    await env.run_until_idle()
    assert (await env.engine.signal(handle.run_id, "paid", 1)).kind == SignalKind.DELIVERED
    await env.advance("1s")  # runs what is due without skipping the day's sleep
    # The wait completed; the run sleeps and nothing waits for "paid": buffered, not expired.
    assert await handle.status() == "sleeping"
    assert (await env.engine.signal(handle.run_id, "paid", 2)).kind == SignalKind.BUFFERED
    await env.advance("1d")
    assert await handle.result(timeout=5) == {"paid": 1, "again": 2}


async def test_an_armed_wait_after_a_timed_out_one_gets_delivered(env: Environment) -> None:
    handle = await env.start(payment_then_reconcile)
    await env.run_until_idle()
    await env.advance("2h")
    await env.advance("1d")  # the second wait for "paid" is armed now
    assert await handle.status() == "waiting"
    assert (await env.engine.signal(handle.run_id, "paid", 3)).kind == SignalKind.DELIVERED
    await env.run_until_idle()
    assert await handle.result(timeout=5) == {"late": 3}
