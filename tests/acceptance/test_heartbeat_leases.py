"""The heartbeat tells a lost lease from a claim the execution ended itself.

The heartbeat extends the leases of the runs executing here and stops an execution whose
run it no longer holds. A run this execution has just finished or parked is no longer
'running' either: when that write commits while the heartbeat is on the wire (the
execution has not yet removed itself), the run must not be reported lost nor its
execution cancelled. A run another worker took, or one gone from under the execution,
still is. Each test pauses an execution at a chosen point and drives the real heartbeat
statement by hand (a manual worker with an hour-long lease never beats on its own here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import anyio
import pytest

import durable
from durable import Engine, RunStatus
from durable._worker.poller import Poller
from durable.testing import shift_clock
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

LEASE = 3600.0
LOST = "lease lost; cancelling its execution"


class Gate:
    """Holds an execution at one point until the test lets it go."""

    def __init__(self) -> None:
        self.reached = anyio.Event()
        self.release = anyio.Event()

    async def hold(self) -> None:
        self.reached.set()
        await self.release.wait()


GATE = Gate()


@pytest.fixture(autouse=True)
def _fresh_gate() -> None:
    global GATE
    GATE = Gate()


@durable.workflow(name="tests.leases.quick")
async def quick(n: int) -> int:
    return n * 2


@durable.workflow(name="tests.leases.nap")
async def nap() -> str:
    await durable.sleep("1h")
    return "rested"


@durable.workflow(name="tests.leases.held")
async def held() -> str:
    await GATE.hold()
    return "done"


WORKFLOWS = [quick, nap, held]


def _manual(make_engine: EngineFactory) -> Engine:
    return make_engine(
        *WORKFLOWS, worker="manual", inline_wait_seconds=0.0,
        lease_seconds=LEASE, heartbeat_seconds=LEASE / 2,
    )  # fmt: skip


def _poller(engine: Engine) -> Poller:
    assert engine.worker is not None
    assert engine.worker.poller is not None
    return engine.worker.poller


def _then_hold(write: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``write``, then hold the execution: its write has committed, and it is still
    registered as executing."""

    async def written(*args: Any, **kwargs: Any) -> Any:
        outcome = await write(*args, **kwargs)
        await GATE.hold()
        return outcome

    return written


async def _beat_while_held(engine: Engine, run_id: UUID) -> bool:
    """Claim, heartbeat once while the execution is held, let it go; return whether the
    heartbeat cancelled the execution."""
    poller = _poller(engine)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.claim_once)
        await GATE.reached.wait()
        execution = poller.active[run_id]
        await poller._heartbeat()
        cancelled = execution.scope.cancel_called
        GATE.release.set()
    return cancelled


async def test_a_finish_committed_while_the_heartbeat_is_on_the_wire_is_not_a_lost_lease(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _manual(make_engine) as engine:
        finishes = engine.runtime.writer.finishes
        monkeypatch.setattr(finishes, "write", _then_hold(finishes.write))
        handle = await engine.start(quick, 21)
        with caplog.at_level(logging.INFO, logger="durable.worker"):
            cancelled = await _beat_while_held(engine, handle.run_id)
        assert not cancelled
        assert LOST not in caplog.text
        assert await handle.status() == RunStatus.COMPLETED
        assert await handle.result(timeout=5) == 42


async def test_a_park_committed_while_the_heartbeat_is_on_the_wire_is_not_a_lost_lease(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _manual(make_engine) as engine:
        store = engine.runtime.store
        monkeypatch.setattr(store, "park", _then_hold(store.park))
        handle = await engine.start(nap)
        with caplog.at_level(logging.INFO, logger="durable.worker"):
            cancelled = await _beat_while_held(engine, handle.run_id)
        assert not cancelled
        assert LOST not in caplog.text
        assert await handle.status() == RunStatus.SLEEPING


async def _lost_while_held(
    engine: Engine, caplog: pytest.LogCaptureFixture, take: Callable[[UUID], Awaitable[None]]
) -> None:
    """Hold an execution of ``held``, ``take`` its run from under it, heartbeat once: the
    lease is reported lost and the execution cancelled."""
    handle = await engine.start(held)
    poller = _poller(engine)
    with caplog.at_level(logging.INFO, logger="durable.worker"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.claim_once)
            await GATE.reached.wait()
            execution = poller.active[handle.run_id]
            await take(handle.run_id)
            await poller._heartbeat()
            assert execution.scope.cancel_called
    assert f"run {handle.run_id}: {LOST}" in caplog.text


async def test_a_run_another_worker_took_over_is_a_lost_lease(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with _manual(make_engine) as engine:

        async def take_over(run_id: UUID) -> None:
            await shift_clock(engine, LEASE + 1)  # the lease expired: another takes it
            taken = await engine.runtime.store.claim(
                "another-worker", LEASE, 1, ["default"], ["tests.leases.held"], [1]
            )
            assert [row.id for row in taken] == [run_id]

        await _lost_while_held(engine, caplog, take_over)


async def test_a_run_deleted_under_its_execution_is_a_lost_lease(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with _manual(make_engine) as engine:

        async def delete(run_id: UUID) -> None:
            await engine.runtime.store.pool.execute(
                "DELETE FROM durable.runs WHERE id = $1", run_id
            )

        await _lost_while_held(engine, caplog, delete)


SECOND = Gate()


@durable.workflow(name="tests.leases.nap_then_hold")
async def nap_then_hold() -> str:
    await durable.sleep("1h")
    await SECOND.hold()
    return "done"


async def test_a_run_claimed_again_while_its_parked_execution_ends_stays_registered(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run parks, is due again and is claimed by a second execution before the first
    has removed itself: the first must not remove the second's registration (which keeps
    its lease beating and its slot counted)."""
    global SECOND
    SECOND = Gate()
    engine = make_engine(
        nap_then_hold, worker="manual", inline_wait_seconds=0.0,
        lease_seconds=LEASE, heartbeat_seconds=LEASE / 2,
    )  # fmt: skip
    async with engine:
        store = engine.runtime.store
        monkeypatch.setattr(store, "park", _then_hold(store.park))
        handle = await engine.start(nap_then_hold)
        poller = _poller(engine)
        first_done = anyio.Event()

        async def first_claim() -> None:
            await poller.claim_once()
            first_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(first_claim)
            await GATE.reached.wait()  # parked (committed), still registered
            first = poller.active[handle.run_id]
            await shift_clock(engine, 3601)  # due again
            tg.start_soon(poller.claim_once)
            await SECOND.reached.wait()  # the second execution runs the rest
            second = poller.active[handle.run_id]
            assert second is not first
            GATE.release.set()
            await first_done.wait()  # the first execution has ended
            assert poller.active.get(handle.run_id) is second
            SECOND.release.set()
        assert await handle.result(timeout=5) == "done"
