"""Lifecycle hooks on real runs: every kind, once per real transition, never in replay.

Events reach hooks through a queue drained by the engine's task group; leaving the
``async with`` block delivers what is queued, so after it a list of events is complete
and a test can assert on exactly what arrived.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import pytest

import durable
from durable import (
    Client,
    HookEvent,
    Hooks,
    RunCancelledEvent,
    RunCompletedEvent,
    RunEvent,
    RunFailedEvent,
    RunResumedEvent,
    RunStartedEvent,
    RunSuspendedEvent,
    StepCompletedEvent,
    StepEvent,
    StepFailedEvent,
    StepRetryingEvent,
    Worker,
    WorkflowFailed,
    step,
    workflow,
)
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.waits.probes import shift_clock

pytestmark = pytest.mark.anyio


@step(name="hk.reserve")
async def reserve(order: str) -> str:
    support.CALLS[support.run_key("hk.reserve")] += 1
    return f"reserved {order}"


@step(name="hk.flaky", retries=1, initial_interval=600, max_interval=600)
async def flaky() -> str:
    """Fails its first attempt; the retry waits minutes, so the run parks (the test moves
    the database clock past it)."""
    support.CALLS[support.run_key("hk.flaky")] += 1
    if support.CALLS[support.run_key("hk.flaky")] == 1:
        raise ConnectionError("transient failure that parks the run")
    return "ok"


@workflow(name="hk.checkout")
async def checkout(order: str) -> str:
    await reserve(order)
    await flaky()  # fails once, parks to retry: a replay follows
    approval = await durable.wait_for_signal("approve")  # parks waiting: another replay
    return f"{order} approved by {approval}"


@step(name="hk.explode")
async def explode() -> None:
    raise ValueError("card declined")


@workflow(name="hk.failing")
async def failing() -> None:
    await explode()


@workflow(name="hk.waiter")
async def waiter() -> Any:
    return await durable.wait_for_signal("never")


@workflow(name="hk.quick")
async def quick(n: int) -> int:
    return n


watched = Hooks()


@workflow(name="hk.watched", hooks=watched)
async def watched_flow(n: int) -> int:
    return await quick_step(n)


@step(name="hk.quick_step")
async def quick_step(n: int) -> int:
    return n + 1


def summary(event: HookEvent) -> tuple[str, ...]:
    name = type(event).__name__.removesuffix("Event")
    if isinstance(event, StepEvent):
        return (name, event.step, str(event.step_attempt))
    if isinstance(event, RunSuspendedEvent):
        return (name, event.status, *event.waiting_for)
    return (name,)


async def test_each_real_transition_fires_once_and_replays_fire_nothing(
    make_engine: EngineFactory,
) -> None:
    seen: list[HookEvent] = []
    hooks = Hooks()

    @hooks.on(HookEvent)
    async def record(event: HookEvent) -> None:
        seen.append(event)

    async with make_engine(checkout, hooks=hooks) as engine:
        handle = await engine.start(checkout, "o-1")
        await support.wait_until(
            lambda: any(isinstance(e, RunSuspendedEvent) and e.status == "sleeping" for e in seen),
            what="the run to park for its step's retry",
        )
        await shift_clock(engine, 700)  # the retry is due
        await support.wait_until(
            lambda: any(isinstance(e, RunSuspendedEvent) and e.status == "waiting" for e in seen),
            what="the run to park waiting",
        )
        await engine.signal(handle.run_id, "approve", "ann")
        assert await handle.result(timeout=10) == "o-1 approved by ann"

    assert [summary(e) for e in seen] == [
        ("RunStarted",),
        ("StepStarted", "hk.reserve", "1"),
        ("StepCompleted", "hk.reserve", "1"),
        ("StepStarted", "hk.flaky", "1"),
        ("StepRetrying", "hk.flaky", "1"),
        ("RunSuspended", "sleeping"),
        ("RunResumed",),
        ("StepStarted", "hk.flaky", "2"),
        ("StepCompleted", "hk.flaky", "2"),
        ("RunSuspended", "waiting", "signal:approve"),
        ("RunResumed",),
        ("RunCompleted",),
    ]
    assert support.CALLS[("hk.reserve", handle.run_id)] == 1  # replayed twice, ran once
    assert {e.run_id for e in seen} == {handle.run_id}
    assert {e.workflow for e in seen} == {"hk.checkout"}
    assert [e.attempt for e in seen if isinstance(e, RunStartedEvent | RunResumedEvent)] == [
        1,
        2,
        3,
    ]
    retrying = next(e for e in seen if isinstance(e, StepRetryingEvent))
    assert retrying.error.type == "builtins.ConnectionError"
    assert retrying.retry_in >= 300
    assert retrying.cursor_key == "step:hk.flaky#0"
    done = next(e for e in seen if isinstance(e, RunCompletedEvent))
    assert done.duration is not None
    assert done.duration >= 0
    completed = next(e for e in seen if isinstance(e, StepCompletedEvent))
    assert completed.duration >= 0
    assert completed.cursor_key == "step:hk.reserve#0"


async def test_sync_hooks_see_failures_in_a_worker_thread(make_engine: EngineFactory) -> None:
    seen: list[tuple[HookEvent, int]] = []
    hooks = Hooks()

    def record(event: StepFailedEvent | RunFailedEvent) -> None:  # sync: runs in a thread
        seen.append((event, threading.get_ident()))

    hooks.add(StepFailedEvent, record, RunFailedEvent)
    async with make_engine(failing, hooks=hooks) as engine:
        handle = await engine.start(failing)
        with pytest.raises(WorkflowFailed):
            await handle.result(timeout=10)

    events = [event for event, _ in seen]
    assert [type(e) for e in events] == [StepFailedEvent, RunFailedEvent]
    step_failed, run_failed = events
    assert isinstance(step_failed, StepFailedEvent)
    assert isinstance(run_failed, RunFailedEvent)
    assert step_failed.error.type == "builtins.ValueError"
    assert step_failed.error.message == "card declined"
    assert step_failed.step == "hk.explode"
    assert step_failed.step_attempt == 1
    assert run_failed.error.message == "card declined"
    assert all(ident != threading.get_ident() for _, ident in seen)


async def test_cancel_fires_run_cancelled_in_the_cancelling_process(
    make_engine: EngineFactory,
) -> None:
    seen: list[HookEvent] = []
    async with make_engine(waiter) as engine:
        engine.hooks.add(RunCancelledEvent, seen.append)
        handle = await engine.start(waiter)
        await support.wait_for_status(handle, "waiting")
        assert await engine.cancel(handle.run_id)
        assert not await engine.cancel(handle.run_id)  # already finished: no second event

    assert len(seen) == 1
    event = seen[0]
    assert isinstance(event, RunCancelledEvent)
    assert (event.run_id, event.workflow, event.version, event.attempt) == (
        handle.run_id,
        "hk.waiter",
        1,
        1,
    )


async def test_workflow_hooks_see_only_their_workflow(make_engine: EngineFactory) -> None:
    mine: list[HookEvent] = []
    everyone: list[HookEvent] = []
    watched.add(HookEvent, mine.append)
    try:
        async with make_engine(watched_flow, quick) as engine:
            engine.hooks.add(RunCompletedEvent, everyone.append)
            first = await engine.start(watched_flow, 1)
            second = await engine.start(quick, 5)
            assert await first.result(timeout=10) == 2
            assert await second.result(timeout=10) == 5
    finally:
        watched._entries = ()

    assert {e.run_id for e in mine} == {first.run_id}
    assert [summary(e) for e in mine] == [
        ("RunStarted",),
        ("StepStarted", "hk.quick_step", "1"),
        ("StepCompleted", "hk.quick_step", "1"),
        ("RunCompleted",),
    ]
    assert sorted(str(e.run_id) for e in everyone) == sorted(
        [str(first.run_id), str(second.run_id)]
    )


async def test_a_raising_hook_is_logged_and_the_run_completes(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    after: list[HookEvent] = []
    hooks = Hooks()

    @hooks.on(RunCompletedEvent)
    async def broken_async(event: RunCompletedEvent) -> None:
        raise RuntimeError("async hook bug")

    @hooks.on(RunStartedEvent)
    def broken_sync(event: RunStartedEvent) -> None:
        raise KeyError("sync hook bug")

    hooks.add(RunCompletedEvent, after.append)
    caplog.set_level(logging.ERROR, logger="durable.hooks")
    async with make_engine(quick, hooks=hooks) as engine:
        handle = await engine.start(quick, 7)
        assert await handle.result(timeout=10) == 7
        again = await engine.start(quick, 8)  # the worker goes on serving runs
        assert await again.result(timeout=10) == 8

    assert [e.run_id for e in after] == [handle.run_id, again.run_id]
    failures = [r for r in caplog.records if r.name == "durable.hooks"]
    assert len(failures) == 4
    first = failures[0]
    assert first.exc_info is not None
    messages = [r.getMessage() for r in failures]
    assert any("broken_sync" in m and "RunStartedEvent" in m for m in messages)
    assert any("broken_async" in m and "RunCompletedEvent" in m for m in messages)
    assert all(str(handle.run_id) in m or str(again.run_id) in m for m in messages)
    assert {getattr(r, "run_id", None) for r in failures} == {
        str(handle.run_id),
        str(again.run_id),
    }
    assert {getattr(r, "workflow", None) for r in failures} == {"hk.quick"}


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_blocked_hook_delays_no_run(make_engine: EngineFactory, kind: str) -> None:
    entered = threading.Event()
    release = threading.Event()
    released = anyio.Event()  # what the async hook awaits
    delivered: list[HookEvent] = []
    hooks = Hooks()

    if kind == "async":

        @hooks.on(RunCompletedEvent)
        async def stuck(event: RunCompletedEvent) -> None:
            entered.set()
            await released.wait()
            delivered.append(event)

    else:

        @hooks.on(RunCompletedEvent)
        def stuck(event: RunCompletedEvent) -> None:
            entered.set()
            release.wait()  # blocks its worker thread, not the event loop
            delivered.append(event)

    async with make_engine(quick, hooks=hooks) as engine:
        first = await engine.start(quick, 1)
        assert await first.result(timeout=10) == 1
        await support.wait_until(entered.is_set, what="the hook to be called")
        later = [await engine.start(quick, n) for n in range(2, 5)]
        for n, handle in enumerate(later, start=2):
            assert await handle.result(timeout=10) == n  # while the hook is still blocked
        assert not delivered
        release.set()
        released.set()

    assert delivered[0].run_id == first.run_id
    assert sorted(str(e.run_id) for e in delivered[1:]) == sorted(str(h.run_id) for h in later)


async def test_a_full_hook_queue_drops_events_and_says_so(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    entered = anyio.Event()
    release = anyio.Event()
    delivered: list[HookEvent] = []
    hooks = Hooks()

    @hooks.on(HookEvent)
    async def stuck(event: HookEvent) -> None:
        entered.set()
        await release.wait()
        delivered.append(event)

    caplog.set_level(logging.WARNING, logger="durable.hooks")
    async with make_engine(quick, hooks=hooks, hook_queue_size=1) as engine:
        dispatcher = engine.runtime.hooks
        first = await engine.start(quick, 1)
        await entered.wait()
        handles = [await engine.start(quick, n) for n in range(2, 6)]
        for n, handle in enumerate(handles, start=2):
            assert await handle.result(timeout=10) == n
        assert await first.result(timeout=10) == 1
        # 5 runs x (started, completed): one in the blocked hook's hands, maybe one taken
        # with it, one queued; the rest dropped. A result can be read from the run's row
        # before its execution emitted RunCompletedEvent: wait for the drops, not assume.
        await support.wait_until(lambda: dispatcher.dropped >= 7, what="7 events dropped")
        release.set()

    # The worker stopped before the queue closed: every event was delivered or dropped.
    dropped = dispatcher.dropped
    assert len(delivered) == 10 - dropped
    warnings = [r.getMessage() for r in caplog.records if r.name == "durable.hooks"]
    assert any("hook queue full" in m for m in warnings)
    assert any(f"{dropped} lifecycle hook event(s) dropped" in m for m in warnings)


async def test_a_worker_on_its_own_fires_the_hooks_of_its_client(database_url: str) -> None:
    seen: list[HookEvent] = []
    hooks = Hooks()
    hooks.add(RunEvent, seen.append)
    async with (
        Client(database_url, workflows=[quick], hooks=hooks) as client,
        Worker(client, workflows=[quick], poll_interval=0.05),
    ):
        handle = await client.start(quick, 3)
        assert await handle.result(timeout=10) == 3
    assert [type(e) for e in seen] == [RunStartedEvent, RunCompletedEvent]
    assert {e.run_id for e in seen} == {handle.run_id}
