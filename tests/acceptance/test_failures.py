"""Failing steps: retries and backoff, what stops them, timeouts, and errors seen by workflows."""

from __future__ import annotations

import time

import anyio
import pytest

import durable
from durable import (
    Engine,
    NonRetryableError,
    RunStatus,
    StepTimeout,
    WorkflowFailed,
    step,
    workflow,
)
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS, OBSERVED, TIMES

pytestmark = pytest.mark.anyio


class LedgerError(Exception):
    """A user exception with several arguments, defined at module level so it can be rebuilt."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, status)
        self.status = status


class PaymentRejected(NonRetryableError):
    pass


# -- steps ---------------------------------------------------------------------------------


@step(retries=3, initial_interval=0.1, backoff=3.0, max_interval=10.0)
async def fails_twice() -> str:
    CALLS["fails_twice"] += 1
    TIMES.append(time.monotonic())
    if CALLS["fails_twice"] <= 2:
        raise ConnectionError(f"attempt {CALLS['fails_twice']} failed")
    return f"succeeded on attempt {CALLS['fails_twice']}"


@step(retries=3, initial_interval=0.01, max_interval=0.01, retry_on=(ConnectionError,))
async def picky(kind: str) -> str:
    CALLS[("picky", kind)] += 1
    if CALLS[("picky", kind)] == 1:
        raise ConnectionError("retried") if kind == "connection" else ValueError("not retried")
    return f"{kind} ok"


@step(retries=5, initial_interval=0.01, max_interval=0.01)
async def rejects(subclass: bool) -> str:
    CALLS["rejects"] += 1
    if subclass:
        raise PaymentRejected("card reported stolen")
    raise NonRetryableError("do not try again")


@step(retries=2, initial_interval=0.01, max_interval=0.01)
async def always_bad() -> int:
    CALLS["always_bad"] += 1
    raise ValueError(f"bad {CALLS['always_bad']}")


@step(timeout=0.1)
async def too_slow() -> str:
    CALLS["too_slow.started"] += 1
    try:
        await anyio.sleep_forever()  # only the step timeout ends it
    except anyio.get_cancelled_exc_class():
        CALLS["too_slow.cancelled"] += 1
        raise
    CALLS["too_slow.finished"] += 1
    return "finished"


@step
async def declined() -> str:
    CALLS["declined"] += 1
    raise LedgerError("card declined", 402)


# -- workflows -----------------------------------------------------------------------------


@workflow
async def retrying_workflow() -> str:
    return await fails_twice()


@workflow
async def picky_workflow(kind: str) -> str:
    return await picky(kind)


@workflow
async def rejecting_workflow(subclass: bool) -> str:
    if subclass:
        try:
            await rejects(subclass)
        except PaymentRejected as exc:
            return f"caught {type(exc).__name__}: {exc}"
    return await rejects(subclass)


@workflow
async def catches_value_error() -> str:
    try:
        await always_bad()
    except ValueError as exc:
        return f"caught {type(exc).__name__}: {exc}"
    return "not raised"


@workflow
async def lets_value_error_through() -> int:
    return await always_bad()


@workflow
async def catches_timeout() -> str:
    try:
        return await too_slow()
    except StepTimeout as exc:
        return f"timed out ({exc.code})"


@workflow
async def lets_timeout_through() -> str:
    return await too_slow()


@workflow
async def catch_then_park() -> str:
    seen: list[object] = []
    try:
        await declined()
    except LedgerError as exc:
        seen.append((type(exc), exc.args, exc.status))
    try:
        await always_bad()
    except ValueError as exc:
        seen.append((type(exc), exc.args))
    try:
        await too_slow()
    except StepTimeout as exc:
        seen.append((type(exc), exc.code))
    OBSERVED.append((durable.current_run().attempt, seen))
    await support.park_once()
    return "handled"


WORKFLOWS = [
    retrying_workflow,
    picky_workflow,
    rejecting_workflow,
    catches_value_error,
    lets_value_error_through,
    catches_timeout,
    lets_timeout_through,
    catch_then_park,
]


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("inline_wait", [5.0, 0.0], ids=["in-process", "parked"])
async def test_retries_count_attempts_and_respect_backoff(
    make_engine: EngineFactory, inline_wait: float
) -> None:
    async with make_engine(retrying_workflow, inline_wait_seconds=inline_wait) as engine:
        handle = await engine.start(retrying_workflow)
        assert await handle.result(timeout=5) == "succeeded on attempt 3"
        detail = await engine.get_run(handle.run_id)

    assert CALLS["fails_twice"] == 3
    [info] = detail.steps
    assert (info.cursor_key, info.status, info.attempt, info.output) == (
        "step:fails_twice#0",
        "completed",
        3,
        "succeeded on attempt 3",
    )
    # Delays are between half and all of 0.1 * 3**(n-1): [0.05, 0.1] then [0.15, 0.3].
    first_gap, second_gap = TIMES[1] - TIMES[0], TIMES[2] - TIMES[1]
    assert first_gap >= 0.045  # a retry never comes before its backoff
    assert second_gap >= 0.145
    # Parked retries come back through a new claim of the run; in-process ones do not.
    assert detail.attempt == (1 if inline_wait else 3)


async def test_retry_on_limits_which_exceptions_are_retried(engine: Engine) -> None:
    retried = await engine.start(picky_workflow, "connection")
    assert await retried.result(timeout=5) == "connection ok"
    assert CALLS[("picky", "connection")] == 2

    not_retried = await engine.start(picky_workflow, "value")
    with pytest.raises(WorkflowFailed) as caught:
        await not_retried.result(timeout=5)
    assert CALLS[("picky", "value")] == 1
    assert caught.value.error.type == "builtins.ValueError"
    assert caught.value.error.message == "not retried"
    [info] = (await engine.get_run(not_retried.run_id)).steps
    assert (info.status, info.attempt) == ("failed", 1)


async def test_non_retryable_error_stops_at_once(engine: Engine) -> None:
    handle = await engine.start(rejecting_workflow, False)
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert CALLS["rejects"] == 1
    assert caught.value.error.type == "durable.errors.NonRetryableError"
    assert caught.value.error.message == "do not try again"
    assert caught.value.error.code == "non_retryable"

    CALLS.clear()
    subclass = await engine.start(rejecting_workflow, True)
    result = await subclass.result(timeout=5)
    assert result == "caught PaymentRejected: card reported stolen"
    assert CALLS["rejects"] == 1


async def test_exhausted_retries_raise_the_same_type_inside_the_workflow(engine: Engine) -> None:
    handle = await engine.start(catches_value_error)
    assert await handle.result(timeout=5) == "caught ValueError: bad 3"
    assert CALLS["always_bad"] == 3
    [info] = (await engine.get_run(handle.run_id)).steps
    assert (info.cursor_key, info.status, info.attempt) == ("step:always_bad#0", "failed", 3)
    assert info.error is not None
    assert info.error.type == "builtins.ValueError"
    assert info.error.message == "bad 3"


async def test_uncaught_step_error_fails_the_run_with_its_type(engine: Engine) -> None:
    handle = await engine.start(lets_value_error_through)
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert caught.value.run_id == handle.run_id
    assert caught.value.error.type == "builtins.ValueError"
    assert caught.value.error.message == "bad 3"
    assert caught.value.error.traceback is not None
    assert "ValueError: bad 3" in caught.value.error.traceback
    assert await handle.status() == RunStatus.FAILED
    detail = await engine.get_run(handle.run_id)
    assert detail.error is not None
    assert detail.error.type == "builtins.ValueError"
    assert detail.output is None


# -- timeouts ------------------------------------------------------------------------------


async def test_step_timeout_is_catchable_and_cancels_the_body(engine: Engine) -> None:
    handle = await engine.start(catches_timeout)
    # The body sleeps forever: a result at all proves the timeout did not wait for it.
    assert await handle.result(timeout=5) == "timed out (step_timeout)"
    assert CALLS["too_slow.started"] == 1
    assert CALLS["too_slow.cancelled"] == 1
    assert CALLS["too_slow.finished"] == 0
    [info] = (await engine.get_run(handle.run_id)).steps
    assert info.status == "failed"
    assert info.error is not None
    assert info.error.type == "durable.errors.StepTimeout"


async def test_uncaught_step_timeout_fails_the_run(engine: Engine) -> None:
    handle = await engine.start(lets_timeout_through)
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert caught.value.error.type == "durable.errors.StepTimeout"
    assert caught.value.error.code == "step_timeout"
    assert CALLS["too_slow.finished"] == 0


# -- errors on replay ----------------------------------------------------------------------


async def test_caught_step_errors_keep_their_types_on_replay(engine: Engine) -> None:
    handle = await engine.start(catch_then_park)
    await support.wait_for_status(handle, "sleeping")
    assert await handle.result(timeout=5) == "handled"

    expected = [
        (LedgerError, ("card declined", 402), 402),
        (ValueError, ("bad 3",)),
        (StepTimeout, "step_timeout"),
    ]
    assert [attempt for attempt, _ in OBSERVED] == [1, 2]
    assert OBSERVED[0][1] == expected
    assert OBSERVED[1][1] == expected  # rebuilt from the records, not re-run
    assert CALLS["declined"] == 1
    assert CALLS["always_bad"] == 3
    assert CALLS["too_slow.started"] == 1
    assert CALLS["park_once"] == 2
    assert (await engine.get_run(handle.run_id)).attempt == 2
