"""Run management: retry from the failed step, fork from a key, pause and resume,
fast-forward, prune, payload caps, health and the list filters."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import anyio
import pytest

import durable
from durable import (
    Engine,
    ForwardKind,
    NonRetryableError,
    PayloadTooLarge,
    RetryKind,
    RunNotFound,
    RunStatus,
    SignalKind,
    WorkflowFailed,
    step,
    workflow,
)
from durable.testing import database_now, shift_clock
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS, count_rows

pytestmark = pytest.mark.anyio

BROKEN: set[str] = set()
"""Step names that fail while listed; tests remove them to "deploy the fix"."""
GATE: dict[str, anyio.Event] = {}


@pytest.fixture(autouse=True)
def _reset_flags() -> None:
    BROKEN.clear()
    GATE.clear()


def _body(name: str) -> str:
    CALLS[name] += 1
    if name in BROKEN:
        raise NonRetryableError(f"{name} is broken")
    return f"{name}-{CALLS[name]}"


@step
async def first() -> str:
    return _body("first")


@step
async def second() -> str:
    return _body("second")


@step
async def third() -> str:
    return _body("third")


@workflow(name="tests.m.three_steps")
async def three_steps() -> list[str]:
    return [await first(), await second(), await third()]


@workflow(name="tests.m.catches")
async def catches() -> str:
    with contextlib.suppress(NonRetryableError):
        await first()
    return await second()


@workflow(name="tests.m.child")
async def child() -> str:
    return await second()


@workflow(name="tests.m.parent")
async def parent() -> str:
    return f"{await first()}+{await child()}"


@workflow(name="tests.m.sleeper")
async def sleeper() -> str:
    await durable.sleep("1d")
    return await first()


@workflow(name="tests.m.approval")
async def approval() -> bool:
    approved: bool = await durable.wait_for_signal("approve", type=bool)
    return approved


@step
async def gated() -> str:
    CALLS["gated"] += 1
    await GATE.setdefault("gate", anyio.Event()).wait()
    return "through"


@workflow(name="tests.m.blocked")
async def blocked() -> str:
    return await gated()


@step
async def big_result(size: int) -> str:
    return "x" * size


@workflow(name="tests.m.big_step")
async def big_step(size: int) -> int:
    try:
        await big_result(size)
    except PayloadTooLarge as exc:
        return exc.size
    return 0


@workflow(name="tests.m.big_output")
async def big_output(size: int) -> str:
    return "y" * size


@workflow(name="tests.m.echo")
async def echo(value: Any = None) -> Any:
    return value


@workflow(name="tests.m.fan")
async def fan() -> str:
    await approval.start()  # a child that waits for a signal: unfinished after fan ends
    return "started"


WORKFLOWS = [
    three_steps, catches, child, parent, sleeper, approval, blocked, big_step, big_output,
    echo, fan,
]  # fmt: skip


async def _failed(engine: Engine, wf: Any, *args: Any) -> Any:
    handle = await engine.start(wf, *args)
    with pytest.raises(WorkflowFailed):
        await handle.result(timeout=5)
    return handle


# -- retry ---------------------------------------------------------------------------------


async def test_retry_resumes_from_the_failed_step_keeping_earlier_results(
    engine: Engine,
) -> None:
    BROKEN.add("second")
    handle = await _failed(engine, three_steps)
    BROKEN.clear()  # the fix is deployed
    result = await engine.retry(handle.run_id)
    assert result.kind == RetryKind.QUEUED
    assert result.retried == [handle.run_id]
    assert await handle.result(timeout=5) == ["first-1", "second-2", "third-1"]
    assert CALLS["first"] == 1  # recorded before the failure: not run again


async def test_retry_of_a_run_that_did_not_fail(engine: Engine) -> None:
    handle = await engine.start(echo, 1)
    await handle.result(timeout=5)
    result = await engine.retry(handle.run_id)
    assert result.kind == RetryKind.NOT_FAILED
    assert result.status == RunStatus.COMPLETED
    assert (await engine.retry("00000000-0000-0000-0000-000000000000")).kind == "missing"


async def test_retry_keeps_a_failure_the_workflow_caught(engine: Engine) -> None:
    BROKEN.update({"first", "second"})
    handle = await _failed(engine, catches)
    BROKEN.clear()
    assert (await engine.retry(handle.run_id)).kind == RetryKind.QUEUED
    assert await handle.result(timeout=5) == "second-2"
    assert CALLS["first"] == 1  # its recorded failure is replayed, so the path is the same


async def test_retry_retries_the_failed_child_with_its_parent(engine: Engine) -> None:
    BROKEN.add("second")
    handle = await _failed(engine, parent)
    (child_id,) = (await handle.detail()).children
    BROKEN.clear()
    result = await engine.retry(handle.run_id)
    assert result.retried == [handle.run_id, child_id]
    assert await handle.result(timeout=5) == "first-1+second-2"
    assert CALLS["first"] == 1


# -- fork ----------------------------------------------------------------------------------


async def test_fork_reruns_from_the_chosen_key_only(engine: Engine) -> None:
    source = await engine.start(three_steps)
    assert await source.result(timeout=5) == ["first-1", "second-1", "third-1"]
    fork = await engine.fork(source.run_id, from_step="step:second#0")
    assert fork.run_id != source.run_id
    assert await fork.result(timeout=5) == ["first-1", "second-2", "third-2"]
    assert CALLS["first"] == 1
    detail = await fork.detail()
    assert detail.forked_from == source.run_id
    assert detail.steps[0].output == "first-1"
    assert (await source.detail()).forked_from is None


async def test_fork_from_the_start_and_bad_keys(engine: Engine) -> None:
    source = await engine.start(three_steps)
    await source.result(timeout=5)
    again = await engine.fork(source.run_id)
    assert await again.result(timeout=5) == ["first-2", "second-2", "third-2"]
    with pytest.raises(ValueError, match=r"no record at cursor key 'step:fourth#0'"):
        await engine.fork(source.run_id, from_step="step:fourth#0")
    with pytest.raises(RunNotFound):
        await engine.fork("00000000-0000-0000-0000-000000000000", from_step="step:first#0")


# -- pause and resume ------------------------------------------------------------------------


async def test_a_paused_run_is_never_claimed_until_resumed(make_engine: EngineFactory) -> None:
    async with make_engine(*WORKFLOWS, worker="manual") as engine:
        worker = engine.worker
        assert worker is not None
        handle = await engine.start(sleeper)
        assert await worker.claim_once() == 1
        assert await handle.status() == RunStatus.SLEEPING
        assert await engine.pause(handle.run_id)
        assert not await engine.pause(handle.run_id)  # already paused
        assert await handle.status() == RunStatus.PAUSED
        await shift_clock(engine, "2d")  # its timer is long over
        assert await worker.claim_once() == 0
        assert await handle.status() == RunStatus.PAUSED
        assert await engine.resume(handle.run_id)
        assert not await engine.resume(handle.run_id)
        assert await worker.claim_once() == 1
        assert await handle.result(timeout=5) == "first-1"
        assert not await engine.pause(handle.run_id)  # finished


async def test_pausing_a_running_run_stops_its_execution(engine: Engine) -> None:
    handle = await engine.start(blocked)
    await support.wait_until(lambda: CALLS["gated"] == 1, what="the step to start")
    assert await engine.pause(handle.run_id)
    assert engine.worker is not None
    worker = engine.worker
    await support.wait_until(lambda: handle.run_id not in worker.active, what="the stop")
    assert await handle.status() == RunStatus.PAUSED
    GATE.setdefault("gate", anyio.Event()).set()
    assert await engine.resume(handle.run_id)
    assert await handle.result(timeout=5) == "through"
    assert CALLS["gated"] == 2  # the interrupted attempt had recorded nothing


async def test_resume_keeps_a_start_delay(engine: Engine, database_url: str) -> None:
    handle = await engine.start(echo, "later", delay="1h")
    assert await engine.pause(handle.run_id)
    assert await engine.resume(handle.run_id)
    assert await handle.status() == RunStatus.PENDING
    wake_in = await count_rows(
        database_url,
        "SELECT extract(epoch FROM wake_at - durable.now())::int FROM durable.runs WHERE id = $1",
        handle.run_id,
    )
    assert 3500 < wake_in <= 3600


async def test_pause_and_resume_unknown_runs(engine: Engine) -> None:
    with pytest.raises(RunNotFound):
        await engine.pause("00000000-0000-0000-0000-000000000000")
    with pytest.raises(RunNotFound):
        await engine.resume("00000000-0000-0000-0000-000000000000")


# -- fast-forward ------------------------------------------------------------------------------


async def test_fast_forward_skips_the_current_sleep(engine: Engine) -> None:
    handle = await engine.start(sleeper)
    await support.wait_for_status(handle, "sleeping")
    result = await engine.fast_forward(handle.run_id)
    assert result.kind == ForwardKind.WOKEN
    assert await handle.result(timeout=5) == "first-1"


async def test_fast_forward_delivers_the_signal_the_run_waits_for(engine: Engine) -> None:
    handle = await engine.start(approval)
    await support.wait_for_status(handle, "waiting")
    result = await engine.fast_forward(handle.run_id, True)
    assert result.kind == ForwardKind.SIGNALLED
    assert result.delivery is not None
    assert result.delivery.kind == SignalKind.DELIVERED
    assert await handle.result(timeout=5) is True


async def test_fast_forward_of_runs_that_do_not_wait(engine: Engine) -> None:
    handle = await engine.start(echo, 1)
    await handle.result(timeout=5)
    assert (await engine.fast_forward(handle.run_id)).kind == ForwardKind.NOT_WAITING
    missing = await engine.fast_forward("00000000-0000-0000-0000-000000000000")
    assert missing.kind == ForwardKind.MISSING


# -- prune --------------------------------------------------------------------------------------


async def test_prune_deletes_old_finished_runs_and_leaves_unfinished_ones(
    engine: Engine, database_url: str
) -> None:
    done = await engine.start(parent)
    await done.result(timeout=5)
    BROKEN.add("first")
    failed = await _failed(engine, three_steps)
    waiting = await engine.start(approval)
    await support.wait_for_status(waiting, "waiting")
    fan_run = await engine.start(fan)  # finished, with a child still waiting
    await fan_run.result(timeout=5)
    (fan_child,) = (await fan_run.detail()).children
    await shift_clock(engine, "3d")
    young = await engine.start(echo, "young")
    await young.result(timeout=5)

    assert await engine.prune("1d", statuses=["failed"]) == 1
    assert await engine.prune(timedelta(days=1)) == 2  # parent + its child
    remaining = {r.run_id for r in (await engine.list_runs(limit=100)).items}
    assert remaining == {waiting.run_id, fan_run.run_id, fan_child, young.run_id}
    assert done.run_id not in remaining
    assert failed.run_id not in remaining
    assert await count_rows(database_url, "SELECT count(*) FROM durable.steps s "
                            "WHERE NOT EXISTS (SELECT 1 FROM durable.runs r "
                            "WHERE r.id = s.run_id)") == 0  # fmt: skip
    with pytest.raises(ValueError, match="only deletes finished runs"):
        await engine.prune("1d", statuses=["running"])


# -- payload caps ---------------------------------------------------------------------------------


async def test_payload_caps_refuse_oversized_values_at_the_boundary(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(
        echo, approval, big_step, big_output,
        max_input_bytes=200, max_output_bytes=300, max_signal_bytes=100,
    ) as engine:  # fmt: skip
        with pytest.raises(PayloadTooLarge, match=r"input of workflow 'tests\.m\.echo'") as info:
            await engine.start(echo, "z" * 500)
        assert info.value.limit == 200
        assert await count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0

        handle = await engine.start(approval)
        await support.wait_for_status(handle, "waiting")
        with pytest.raises(PayloadTooLarge, match="payload of signal 'approve'"):
            await engine.signal(handle.run_id, "approve", "s" * 200)
        assert await count_rows(database_url, "SELECT count(*) FROM durable.signals") == 0

        step_run = await engine.start(big_step, 1000)
        assert await step_run.result(timeout=5) == 1002  # the JSON string's quotes count
        (record,) = (await step_run.detail()).steps
        assert record.status == "failed"
        assert record.output is None
        assert record.error is not None
        assert record.error.code == "payload_too_large"

        out_run = await engine.start(big_output, 1000)
        with pytest.raises(WorkflowFailed) as failed:
            await out_run.result(timeout=5)
        assert failed.value.error.code == "payload_too_large"
        assert (await out_run.detail()).output is None


def test_default_payload_caps() -> None:
    settings = Engine().settings
    assert settings.max_input_bytes == 1 << 20
    assert settings.max_output_bytes == 1 << 20
    assert settings.max_signal_bytes == 256 << 10


# -- health ---------------------------------------------------------------------------------------


async def test_health_reports_database_listener_worker_and_backlog(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(echo) as worker, make_engine(echo, worker=False) as client:
        health = await worker.health()
        assert health.ok
        assert (health.database, health.listener, health.worker, health.scheduler) == (
            True, True, True, True,
        )  # fmt: skip
        assert health.ready_runs == 0
        await client.start(echo, delay="1h")
        for _ in range(3):
            await client.start(echo, 1)
        report = await client.health()
        assert report.ok
        assert not report.worker
        assert report.ready_runs is not None
        assert 0 <= report.ready_runs <= 3
        await worker.runtime.listener.close()
        assert not (await worker.health()).ok


# -- list filters ---------------------------------------------------------------------------


async def test_list_runs_filters(engine: Engine) -> None:
    before = await database_now(engine)
    tagged = await engine.start(echo, 1, tags=["tenant:acme"], queue="other")
    plain = await engine.start(parent)
    await plain.result(timeout=5)
    (child_id,) = (await plain.detail()).children
    after = await database_now(engine)

    async def ids(**filters: Any) -> set[Any]:
        return {r.run_id for r in (await engine.list_runs(**filters)).items}

    assert await ids(tag="tenant:acme") == {tagged.run_id}
    assert await ids(queue="other") == {tagged.run_id}
    assert await ids(parent=plain.run_id) == {child_id}
    assert await ids(since=before, until=after) == {tagged.run_id, plain.run_id, child_id}
    assert await ids(since=after) == set()
    assert await ids(until=before) == set()
    page = await engine.list_runs(limit=1)
    assert page.next_cursor is not None
    rest = await engine.list_runs(limit=50, cursor=page.next_cursor)
    assert len(rest.items) == 2
    assert rest.next_cursor is None
