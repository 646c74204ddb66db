"""A signal payload that does not fit its wait's type never kills the run, whoever sent it.

The sender checks the payload only when it can resolve the wait's type; a sender without
the code (the CLI, another service) cannot. The wait then rejects the payload: the signal
stays unconsumed, marked ``rejected`` with the reason in ``get_run``, a warning is logged,
and the run keeps waiting. A recorded payload that a new deploy's type no longer accepts
fails the run; ``engine.retry(discard_signal=)`` / ``replace_signal=`` (CLI ``runs retry
--discard-signal`` / ``--replace-signal``) recover it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

import durable
from durable import Engine, RunStatus, SignalKind, Workflow, WorkflowFailed, workflow
from durable._client.management import RetryKind
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.test_cli import cli

pytestmark = pytest.mark.anyio


def _invoice_type() -> type[BaseModel]:
    # A local class: no process can resolve its name from the wait's record, exactly like
    # a sender that lacks the code, so signal() cannot check the payload before storing it.
    class Invoice(BaseModel):
        amount: int
        currency: str = "EUR"

    return Invoice


Invoice = _invoice_type()


@workflow(name="tests.payloads.pay")
async def pay() -> dict[str, Any]:
    paid = await durable.wait_for_signal("paid", type=Invoice, timeout="7d")
    return {"amount": paid.amount, "currency": paid.currency}


async def _paid_untyped() -> Any:
    paid = await durable.wait_for_signal("paid")
    await durable.wait_for_signal("go")
    return paid


async def _paid_typed() -> Any:
    paid = await durable.wait_for_signal("paid", type=Invoice)
    await durable.wait_for_signal("go")
    return {"amount": paid.amount}


@workflow(name="tests.payloads.numbers")
async def numbers() -> list[int]:
    return await durable.wait_for_signal("numbers", type=list[int])


@workflow(name="tests.payloads.two_items")
async def two_items() -> list[int]:
    first, second = await asyncio.gather(
        durable.wait_for_signal("item", type=Invoice),
        durable.wait_for_signal("item", type=Invoice),
    )
    return [first.amount, second.amount]


def _deploy(fn: Any) -> Workflow[..., Any]:
    # Two deploys of one workflow (same name and version): the second declares a type.
    return Workflow(fn, name="tests.payloads.deployed", version=1, queue="default",
                    timeout=None, schedule=None, timezone="UTC")  # fmt: skip


old_deploy, new_deploy = _deploy(_paid_untyped), _deploy(_paid_typed)


async def _settled(engine: Engine, run_id: Any, name: str) -> list[Any]:
    """The run's signals of ``name`` once none is pending or the run finished."""

    deadline = time.monotonic() + 5.0
    while True:
        detail = await engine.get_run(run_id)
        mine = [s for s in detail.signals if s.name == name]
        if detail.status.finished or all(s.status != "pending" for s in mine):
            return mine
        assert time.monotonic() < deadline, f"signal {name!r} of run {run_id} still pending"
        await anyio.sleep(0.01)


async def test_a_mismatched_payload_from_a_sender_without_the_type_is_rejected_not_fatal(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable")
    async with make_engine(pay) as engine:
        handle = await engine.start(pay)
        await support.wait_for_status(handle, "waiting")
        # The sender cannot resolve Invoice, so it cannot refuse the payload.
        sent = await handle.signal("paid", {"amount": "lots"})
        assert sent.kind == SignalKind.DELIVERED
        assert "not checked here" in (sent.detail or "")

        (bad,) = await _settled(engine, handle.run_id, "paid")
        assert bad.status == "rejected"
        assert bad.consumed_by is None
        assert "amount" in (bad.rejected or "")
        assert bad.payload == {"amount": "lots"}
        await support.wait_for_status(handle, "waiting")  # parked again, not failed
        assert any("rejected" in r.getMessage() for r in caplog.records)

        assert (await handle.signal("paid", {"amount": 5})).kind == SignalKind.DELIVERED
        assert await handle.result(timeout=5) == {"amount": 5, "currency": "EUR"}
        statuses = [s.status for s in (await engine.get_run(handle.run_id)).signals]
        assert statuses == ["rejected", "consumed"]


async def test_a_generic_type_is_checked_by_the_wait(make_engine: EngineFactory) -> None:
    async with make_engine(numbers) as engine:
        handle = await engine.start(numbers)
        await support.wait_for_status(handle, "waiting")
        sent = await handle.signal("numbers", ["one"])
        assert sent.kind == SignalKind.DELIVERED
        assert "list[int]" in (sent.detail or "")  # no sender can resolve a generic alias
        (bad,) = await _settled(engine, handle.run_id, "numbers")
        assert bad.status == "rejected"
        await handle.signal("numbers", [1, "2"])
        assert await handle.result(timeout=5) == [1, 2]


async def test_parallel_typed_waits_skip_a_bad_buffered_payload_and_take_the_rest(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(two_items, worker=False) as client:
        handle = await client.start(two_items)
        for payload in ({"amount": "x"}, {"amount": 1}, {"nope": 0}, {"amount": 2}):
            assert (await handle.signal("item", payload)).kind == SignalKind.BUFFERED
        async with make_engine(two_items):
            # Parallel waits of one name race for the signals: which takes which may vary.
            assert sorted(await handle.result(timeout=5)) == [1, 2]
        signals = (await client.get_run(handle.run_id)).signals
        assert [s.status for s in signals] == ["rejected", "consumed", "rejected", "consumed"]
        assert {s.consumed_by for s in signals} == {None, "signal:item#0", "signal:item#1"}


async def test_retry_discards_or_replaces_a_recorded_signal_the_new_type_refuses(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(old_deploy) as engine:
        first = await engine.start(old_deploy)
        second = await engine.start(old_deploy)
        for handle in (first, second):
            await handle.signal("paid", {"amount": "lots"})
            assert await handle.wait(signal="paid", timeout=5)
    async with make_engine(new_deploy) as engine:
        first, second = engine.handle(first.run_id), engine.handle(second.run_id)
        for handle in (first, second):
            await handle.signal("go")
            with pytest.raises(WorkflowFailed) as caught:
                await handle.result(timeout=5)
            assert caught.value.error.type == "durable.errors.SerializationError"
            assert "discard_signal='paid'" in caught.value.error.message
        # A plain retry replays the same recorded payload and fails again.
        assert (await engine.retry(first.run_id)).kind == RetryKind.QUEUED
        with pytest.raises(WorkflowFailed):
            await engine.handle(first.run_id).result(timeout=5)

        replaced = await engine.retry(first.run_id, replace_signal=("paid", {"amount": 7}))
        assert replaced.kind == RetryKind.QUEUED
        assert await engine.handle(first.run_id).result(timeout=5) == {"amount": 7}

        assert (await engine.retry(second.run_id, discard_signal="paid")).kind == "queued"
        await support.wait_for_status(second, "waiting")  # the wait is armed again
        await second.signal("paid", {"amount": 8})
        assert await engine.handle(second.run_id).result(timeout=5) == {"amount": 8}
        kept = (await engine.get_run(second.run_id)).signals
        assert [s.status for s in kept if s.name == "paid"] == ["rejected", "consumed"]


async def test_retry_refuses_a_signal_the_run_never_recorded(make_engine: EngineFactory) -> None:
    async with make_engine(old_deploy) as engine:
        handle = await engine.start(old_deploy)
        await handle.signal("paid", 1)
        await support.wait_for_status(handle, "waiting")
        await handle.cancel()
    async with make_engine(new_deploy) as engine:
        with pytest.raises(ValueError, match="not both"):
            await engine.retry(handle.run_id, discard_signal="a", replace_signal=("b", 1))
        # Not failed: nothing to discard, nothing changed.
        result = await engine.retry(handle.run_id, discard_signal="nope")
        assert result.kind == RetryKind.NOT_FAILED


async def test_cli_runs_retry_replaces_a_bad_recorded_signal(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(old_deploy) as engine:
        handle = await engine.start(old_deploy)
        await handle.signal("paid", {"amount": "lots"})
        assert await handle.wait(signal="paid", timeout=5)
    async with make_engine(new_deploy) as engine:
        handle = engine.handle(handle.run_id)
        await handle.signal("go")
        await support.wait_for_status(handle, "failed")
        shown = await cli(database_url, "runs", "show", str(handle.run_id))
        assert shown.returncode == 0, shown.stderr
        assert "paid #1  consumed by signal:paid#0" in shown.stdout
        missing = await cli(database_url, "runs", "retry", str(handle.run_id),
                            "--discard-signal", "never-sent")  # fmt: skip
        assert missing.returncode == 1
        assert "no recorded signal 'never-sent'" in missing.stderr
        assert await handle.status() == RunStatus.FAILED  # nothing changed

        payload = json.dumps({"amount": 9})
        done = await cli(database_url, "runs", "retry", str(handle.run_id),
                         "--replace-signal", "paid", payload)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "queued run" in done.stdout
        assert await engine.handle(handle.run_id).result(timeout=5) == {"amount": 9}
        shown = await cli(database_url, "runs", "show", str(handle.run_id))
        assert "paid #1  rejected" in shown.stdout
        assert "replaced by engine.retry" in shown.stdout
