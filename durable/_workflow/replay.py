"""Check → run → record for one durable call.

A call takes its cursor key synchronously (in call order), then either returns the record
loaded at claim time, with no round trip, or runs the body under its timeout and retry
policy and writes the outcome in one statement fenced by the run's lease.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from durable._foundation.codec import encode_error, rebuild_exception, to_json
from durable._foundation.limits import check_payload
from durable._workflow.context import Call, CurrentStep, InStep, RunContext
from durable.errors import (
    DurableCallInStep,
    LeaseLost,
    NonRetryableError,
    PayloadTooLarge,
    SerializationError,
    StepTimeout,
)

if TYPE_CHECKING:
    from durable._workflow.decorators import RetryPolicy, Step

__all__ = ["epoch", "run_step", "tracked", "write"]

R = TypeVar("R")


def run_step(
    ctx: RunContext, step: Step[Any, R], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Coroutine[Any, Any, R]:
    """Take the step's cursor key now and return the coroutine that replays or runs it."""
    return tracked(ctx, ctx.begin("step", step.name), _step, step, args, kwargs)


async def tracked(
    ctx: RunContext,
    call: Call,
    body: Callable[..., Awaitable[R]],
    *args: Any,
) -> R:
    """Run one durable call's body; when it ends, it is no longer in flight."""
    try:
        ctx.check()  # the execution ended between the call and its await: run nothing
        return await body(ctx, call, *args)
    finally:
        await ctx.execution.finish_call(ctx, call)


async def _step(
    ctx: RunContext,
    call: Call,
    step: Step[Any, R],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> R:
    key, seq, record = call.key, call.seq, call.record
    attempt = 1
    if record is not None:
        if record.status == "completed":
            result: R = step.signature.decode_result(record.output)
            return result
        if record.status == "failed":
            raise rebuild_exception(record.error, cursor_key=key)
        attempt = record.attempt + 1
        await ctx.execution.wait_until(ctx, call, epoch(record.retry_at))
    while True:
        started = datetime.now(UTC)
        try:
            info = CurrentStep(ctx.run_id, ctx.workflow, step.name, key, attempt)
            with (
                ctx.execution.runtime.telemetry.step_attempt(ctx.span_run, step.name, key, attempt),
                InStep(info),
            ):
                ctx.execution.hooks.step_started(step.name, key, attempt)
                timeout = _timeout(ctx, step)
                if timeout is None:  # no frame between the step body and the workflow
                    value = await step.fn(*args, **kwargs)
                else:
                    value = await _attempt_within(step, key, timeout, args, kwargs)
                # The first execution returns what every replay will decode (invariant 7).
                output, value = step.signature.store_result(value)
                check_payload(
                    f"the result of step {step.name} ({key})", output,
                    ctx.execution.runtime.settings.max_output_bytes,
                )  # fmt: skip
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            retry_in = _retry_delay(_policy(ctx, step), exc, attempt)
            error = to_json(encode_error(exc))
            await _record_failure(ctx, step, key, seq, attempt, error, retry_in, started)
            ctx.execution.hooks.step_failed(step.name, key, attempt, started, error, retry_in)
            if retry_in is None:
                # Raise what every replay rebuilds from the record (the same type, message
                # and args, or StepFailed for both); the original stays as its cause.
                raise rebuild_exception(json.loads(error), cursor_key=key) from exc
            await ctx.execution.wait_until(ctx, call, ctx.execution.clock() + retry_in)
            attempt += 1
            continue
        await write(
            ctx, key=key, seq=seq, kind="step", name=step.name, status="completed",
            output_json=output, step_attempt=attempt, started_at=started,
        )  # fmt: skip
        ctx.execution.hooks.step_completed(step.name, key, attempt, started)
        return value


def _timeout(ctx: RunContext, step: Step[Any, Any]) -> float | None:
    """The step's own timeout, else its workflow's or the engine's default."""
    return step.timeout if step.timeout is not None else ctx.step_timeout


def _policy(ctx: RunContext, step: Step[Any, Any]) -> RetryPolicy:
    """The step's retry policy; the default retry count when it set none."""
    if step.retries_set or ctx.step_retries == step.retry.retries:
        return step.retry
    return dataclasses.replace(step.retry, retries=ctx.step_retries)


async def _attempt_within(
    step: Step[Any, R],
    key: str,
    timeout: float,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> R:
    with anyio.move_on_after(timeout) as scope:
        return await step.fn(*args, **kwargs)
    if scope.cancelled_caught:
        raise StepTimeout(f"step {step.name} ({key}) timed out after {timeout:g}s")
    raise AssertionError("unreachable: the step body neither returned nor timed out")


def _retry_delay(policy: RetryPolicy, exc: Exception, attempt: int) -> float | None:
    """Seconds until the next attempt, or None when the failure is final."""
    final = NonRetryableError | SerializationError | PayloadTooLarge | DurableCallInStep
    if attempt > policy.retries or isinstance(exc, final):
        return None
    if policy.retry_on is not None and not isinstance(exc, policy.retry_on):
        return None
    return policy.delay(attempt, random.random())


async def _record_failure(
    ctx: RunContext,
    step: Step[Any, Any],
    key: str,
    seq: int,
    attempt: int,
    error_json: str,
    retry_in: float | None,
    started: datetime,
) -> None:
    await write(
        ctx, key=key, seq=seq, kind="step", name=step.name,
        status="failed" if retry_in is None else "retrying",
        error_json=error_json, step_attempt=attempt,
        retry_in=retry_in, started_at=started,
    )  # fmt: skip


async def write(ctx: RunContext, **fields: Any) -> None:
    """Record one outcome under the lease; a lost lease ends this execution."""
    ctx.check()
    written = await ctx.execution.record(ctx, **fields)
    if not written:
        error = LeaseLost(f"run {ctx.run_id} is no longer held by this worker")
        ctx.fatal = ctx.fatal or error
        raise error


def epoch(value: Any) -> float | None:
    """Epoch seconds of a recorded timestamp (JSON text or a number)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()
