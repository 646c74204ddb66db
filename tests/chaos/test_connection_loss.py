"""Connections cut under a running workflow: the run resumes, it never fails for it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import anyio
import asyncpg
import pytest

from durable import Engine, RunStatus, step, workflow

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

BODIES: list[int] = []
GATE: dict[str, asyncio.Event] = {}


@step
async def cut_point(i: int) -> int:
    BODIES.append(i)
    if i == 1 and "cut" in GATE:
        GATE["reached"].set()
        await GATE["cut"].wait()  # the test terminates every pooled connection here
    return i


@workflow(name="chaos.connection_loss")
async def three_steps() -> list[int]:
    return [await cut_point(i) for i in range(3)]


async def test_terminated_connections_do_not_fail_the_run(database_url: str) -> None:
    BODIES.clear()
    GATE.clear()
    GATE["reached"], GATE["cut"] = asyncio.Event(), asyncio.Event()
    async with Engine(
        database_url, workflows=[three_steps], lease_seconds=1.5, heartbeat_seconds=0.5,
        poll_interval=0.2,
    ) as engine:  # fmt: skip
        handle = await engine.start(three_steps)
        await asyncio.wait_for(GATE["reached"].wait(), 10)
        admin = await asyncpg.connect(database_url)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed >= 2  # the pool's connections and the listener's
        GATE["cut"].set()

        assert await handle.result(timeout=20) == [0, 1, 2]
        assert await handle.status() == RunStatus.COMPLETED
        detail = await engine.get_run(handle.run_id)

    # Step 0 was recorded before the cut and never ran again. Step 1 ran again only if its
    # record was lost with its connection (then on a resumed attempt).
    assert BODIES.count(0) == 1
    assert 1 <= BODIES.count(1) <= 2
    assert BODIES.count(2) == 1
    assert detail.attempt == BODIES.count(1)
    assert [s.cursor_key for s in detail.steps] == [
        "step:cut_point#0",
        "step:cut_point#1",
        "step:cut_point#2",
    ]


FLAKY_BODIES: list[int] = []


@step
async def flaky_point(i: int) -> int:
    FLAKY_BODIES.append(i)
    return i


@workflow(name="chaos.database_blip")
async def blip() -> list[int]:
    return [await flaky_point(i) for i in range(3)]


@pytest.mark.parametrize(
    "error",
    [
        OSError("connection refused (injected)"),
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        asyncpg.exceptions.AdminShutdownError("terminating connection (injected)"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed (injected)"),
        asyncpg.exceptions.SerializationError("could not serialize access (injected)"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_an_unreachable_database_mid_step_leaves_the_run_to_resume(
    database_url: str, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The step's record cannot be written (the database is down for that moment, or the
    connection was terminated): the execution is abandoned, not the run, which resumes
    after its lease and completes. The error is never the step's."""
    from durable._store.store import Store

    FLAKY_BODIES.clear()
    real = Store.record_step
    failures = {"left": 1}

    async def unreachable_once(self: Store, record: object) -> bool:
        if getattr(record, "key", "") == "step:flaky_point#1" and failures["left"]:
            failures["left"] -= 1
            raise error
        return await real(self, record)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "record_step", unreachable_once)
    async with Engine(
        database_url, workflows=[blip], lease_seconds=1.0, heartbeat_seconds=0.3,
        poll_interval=0.2,
    ) as engine:  # fmt: skip
        handle = await engine.start(blip)
        assert await handle.result(timeout=20) == [0, 1, 2]
        detail = await engine.get_run(handle.run_id)
    assert failures["left"] == 0
    assert FLAKY_BODIES == [0, 1, 1, 2]  # step 1 ran again on the resumed attempt only
    assert detail.attempt == 2
    assert detail.error is None


@step
async def call_partner() -> str:
    raise ConnectionRefusedError("partner API refused the connection")


@workflow(name="chaos.partner_down")
async def partner_down() -> str:
    return await call_partner()


async def test_a_workflows_own_os_error_fails_the_run(database_url: str) -> None:
    """Only the store's connection errors abandon an execution; the workflow's own OSError
    (a partner API refusing connections) fails the run like any other exception."""
    from durable import WorkflowFailed

    async with Engine(database_url, workflows=[partner_down], poll_interval=0.2) as engine:
        handle = await engine.start(partner_down)
        with pytest.raises(WorkflowFailed) as failed:
            await handle.result(timeout=10)
        detail = await engine.get_run(handle.run_id)
    assert failed.value.error.type == "builtins.ConnectionRefusedError"
    assert detail.attempt == 1


SLOW_BODIES: list[str] = []


@step
async def half_second(label: str) -> str:
    SLOW_BODIES.append(label)
    await asyncio.sleep(0.5)
    return label


@workflow(name="chaos.claimed_during_heartbeat")
async def claimed_during_heartbeat(label: str) -> str:
    return await half_second(label)


async def test_a_run_claimed_while_a_heartbeat_is_on_the_wire_keeps_its_lease(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat covers the runs executing when it was sent; a run claimed while it was
    on the wire must not be taken for one whose lease was lost (and cancelled)."""
    from durable._store.store import Store

    SLOW_BODIES.clear()
    real = Store.heartbeat

    async def slow_heartbeat(self: Store, *args: Any) -> tuple[set[UUID], bool]:
        await asyncio.sleep(0.3)  # the statement is slow to come back
        return await real(self, *args)

    monkeypatch.setattr(Store, "heartbeat", slow_heartbeat)
    async with Engine(
        database_url, workflows=[claimed_during_heartbeat], lease_seconds=3.0,
        heartbeat_seconds=0.2, poll_interval=0.2,
    ) as engine:  # fmt: skip
        handles = []
        for n in range(6):  # starts spread over several heartbeats
            handles.append(await engine.start(claimed_during_heartbeat, f"r{n}"))
            await asyncio.sleep(0.13)
        results = [await h.result(timeout=20) for h in handles]
    assert results == [f"r{n}" for n in range(6)]
    assert sorted(SLOW_BODIES) == [f"r{n}" for n in range(6)]  # each body ran exactly once


@step
async def plain_point(i: int) -> int:
    return i


def _failing_first(real: Any, errors: list[Exception]) -> Any:
    """``real``, raising each of ``errors`` in turn (one per call) before it is called."""

    def failing(*args: Any, **kwargs: Any) -> Any:
        if errors:
            raise errors.pop(0)
        return real(*args, **kwargs)

    return failing


@workflow(name="chaos.loop_faults")
async def loop_faults() -> list[int]:
    return [await plain_point(i) for i in range(2)]


async def test_errors_in_every_background_loop_are_logged_and_the_worker_goes_on(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim, next-wake, heartbeat and schedule loops each fail a few times, with the
    database's errors and with a bug of durable's own: each is logged, and the worker
    keeps working (invariant 8)."""
    from durable._store.store import Store

    injected = {
        "claim": [asyncpg.InternalClientError("another operation (2) is in progress"),
                  ZeroDivisionError("a bug in the claim")],
        "next_wake": [asyncpg.exceptions.AdminShutdownError("terminating connection"),
                      RuntimeError("a bug in next_wake")],
        "heartbeat": [OSError("network is unreachable"), KeyError("a bug in heartbeat")],
        "next_schedule_wake": [TimeoutError(), AttributeError("a bug in schedules")],
    }  # fmt: skip
    for name, errors in injected.items():
        monkeypatch.setattr(Store, name, _failing_first(getattr(Store, name), errors))
    caplog.set_level(logging.WARNING, logger="durable")
    async with Engine(
        database_url, workflows=[loop_faults], lease_seconds=1.5, heartbeat_seconds=0.2,
        poll_interval=0.1,
    ) as engine:  # fmt: skip
        handle = await engine.start(loop_faults)
        assert await handle.result(timeout=30) == [0, 1]
        with anyio.fail_after(30):  # every injected error raised, and the worker goes on
            while any(injected.values()):
                assert engine.worker is not None
                assert engine.worker.running
                await anyio.sleep(0.05)
        again = await engine.start(loop_faults)
        assert await again.result(timeout=30) == [0, 1]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for what in ("claim", "heartbeat", "schedule pass", "reading the next wake time"):
        assert f"{what} failed" in logged


async def test_result_and_wait_ride_out_a_database_that_drops_their_reads(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A waiter's read can land on a connection whose backend was just terminated (a
    failover, a pooler restart): ``result()`` and ``wait()`` read again, they do not
    raise the database's error to the application."""
    from durable._store import outcome_reader
    from durable._store.store import Store

    cuts = {
        "run_outcomes": [asyncpg.ConnectionDoesNotExistError("connection was closed in the "
                         "middle of operation"), OSError("network is unreachable")],
        "run_progress": [asyncpg.exceptions.AdminShutdownError("terminating connection"),
                         asyncpg.InterfaceError("connection is closed")],
    }  # fmt: skip

    monkeypatch.setattr(
        outcome_reader, "run_outcomes",
        _failing_first(outcome_reader.run_outcomes, cuts["run_outcomes"]),
    )  # fmt: skip
    monkeypatch.setattr(
        Store, "run_progress", _failing_first(Store.run_progress, cuts["run_progress"])
    )
    caplog.set_level(logging.WARNING, logger="durable")
    async with Engine(database_url, workflows=[loop_faults], poll_interval=0.1) as engine:
        handle = await engine.start(loop_faults)
        assert await handle.wait(step="step:plain_point#1", timeout=30) is True
        assert await handle.result(timeout=30) == [0, 1]
    assert cuts == {"run_outcomes": [], "run_progress": []}  # every cut was met
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "reading run" in logged
