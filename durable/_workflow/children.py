"""Child runs started from inside a workflow: cursor-keyed, started exactly once.

A child's run id is derived from the parent's run id and the call's cursor key, so a
resumed parent that reaches the same call inserts the same id, which already exists: the
child is never started twice. Awaiting a child parks the parent as ``waiting``; the
child's completion wakes it in the transaction that records the child's result.
``await handle.result()`` on a started child is the same durable wait, under its own key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from durable._foundation.codec import decode_error, encode_error, error_info, to_json
from durable._foundation.run_ids import child_id_of
from durable._foundation.telemetry import EVENT_CHILD_START
from durable._runs.start_options import NO_OPTIONS, StartOptions
from durable._runs.starting import NewRun, encode_input, start_run
from durable._workflow.context import Call, ParkRequest, RunContext
from durable._workflow.replay import epoch, tracked, write
from durable.errors import DurableError, RunCancelled, WorkflowFailed

if TYPE_CHECKING:
    from durable._client.handles import RunHandle
    from durable._runs.runtime import Runtime
    from durable._workflow.decorators import Workflow

__all__ = ["ChildLimitExceeded", "child_run_id", "run_child", "wait_for_child"]

_FINISHED = ("completed", "failed", "cancelled")
_TIMED_OUT = {"timed_out": True}
"""The output of a ``result:`` record whose wait timed out (the child's failure has none)."""


class ChildLimitExceeded(DurableError):
    """A workflow started more child runs, or nested them deeper, than the engine allows."""

    code = "child_limit_exceeded"


def child_run_id(parent: uuid.UUID, cursor_key: str) -> uuid.UUID:
    """The id of the child started at ``cursor_key`` of ``parent``: the same on every replay."""
    return child_id_of(parent, cursor_key)


def run_child(
    ctx: RunContext,
    workflow: Workflow[Any, Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    wait: bool,
    options: StartOptions = NO_OPTIONS,
) -> Coroutine[Any, Any, Any]:
    """Take the child's cursor key now; start it (once) and, with ``wait``, await its result.
    ``options`` (from ``wf.options(...)``) set the child's queue, priority, tags and the like."""
    call = ctx.begin("child" if wait else "start", workflow.name)
    ctx.children_started += 1
    return tracked(ctx, call, _child, workflow, args, kwargs, wait, ctx.children_started, options)


async def _child(
    ctx: RunContext,
    call: Call,
    workflow: Workflow[Any, Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    wait: bool,
    ordinal: int,
    options: StartOptions,
) -> Any:
    execution = ctx.execution
    child_id = child_run_id(ctx.run_id, call.key)
    record = call.record
    if record is not None:
        return _replayed(workflow, child_id, record.status, record.output, record.error, wait,
                         ctx)  # fmt: skip
    runtime = execution.runtime
    _check_limits(ctx, ordinal, runtime.settings)
    input_json = encode_input(
        runtime, f"child workflow {workflow.name}", workflow.signature, args, dict(kwargs)
    )
    await execution.flush(ctx)
    runtime.telemetry.event(EVENT_CHILD_START, **{"durable.child.workflow": workflow.name,
                                                  "durable.step.cursor": call.key})  # fmt: skip
    request = NewRun(
        run_id=child_id, workflow=workflow.name, version=workflow.version,
        queue=options.queue or workflow.queue, input_json=input_json,
        priority=options.priority or 0, tags=options.tags or (),
        delay_seconds=options.delay, concurrency_key=options.concurrency_key,
        timeout_seconds=runtime.settings.run_timeout(options.timeout, workflow.timeout),
        resource_id=options.resource_id, metadata_json=options.metadata_json,
        parent_run_id=ctx.run_id, parent_cursor=call.key, depth=ctx.depth + 1,
    )  # fmt: skip
    if request.concurrency_key is not None:
        await execution.guarded(ctx, runtime.store.ensure_queue(request.queue))
    await execution.guarded(ctx, start_run(runtime, request))
    if not wait:
        await write(ctx, key=call.key, seq=call.seq, kind="start", name=workflow.name,
                    status="completed", output_json=to_json(str(child_id)))  # fmt: skip
        return _handle(execution.runtime, child_id, workflow, ctx.run_id)
    return await _settle(ctx, call, "child", workflow, child_id)


async def _settle(
    ctx: RunContext,
    call: Call,
    kind: str,
    workflow: Workflow[Any, Any],
    child_id: uuid.UUID,
    deadline: float | None = None,
) -> Any:
    """Record the child's outcome when it has finished, or the timeout once ``deadline``
    (database-clock epoch) passed; else park until either (its completion wakes this run)."""
    execution = ctx.execution
    outcome = await execution.guarded(ctx, execution.runtime.store.run_outcome(child_id))
    if outcome is not None and outcome.status in _FINISHED:
        status = "completed" if outcome.status == "completed" else "failed"
        await write(ctx, key=call.key, seq=call.seq, kind=kind, name=workflow.name,
                    status=status, output_json=outcome.output,
                    error_json=outcome.error)  # fmt: skip
        output = json.loads(outcome.output) if outcome.output else None
        return _outcome(workflow, child_id, status, output, decode_error(outcome.error))
    if deadline is not None and execution.clock() >= deadline:
        error = _timed_out(child_id, call.key)
        await write(ctx, key=call.key, seq=call.seq, kind=kind, name=workflow.name,
                    status="failed", output_json=to_json(_TIMED_OUT),
                    error_json=to_json(encode_error(error)))  # fmt: skip
        raise error
    return await execution.park(ctx, call, ParkRequest("waiting", deadline, f"child:{child_id}"))


def wait_for_child(
    ctx: RunContext, handle: RunHandle[Any], timeout: float | None
) -> Coroutine[Any, Any, Any]:
    """``await handle.result()`` inside the workflow that started the child: a durable
    wait recorded under ``result:<workflow>#n``, parking this run until the child ends.
    ``timeout`` (seconds, database clock) is recorded like a signal wait's: a replay keeps
    the first deadline, and raises ``TimeoutError`` at the same point."""
    workflow = handle.workflow
    if handle.parent_run_id != ctx.run_id or workflow is None:
        raise RuntimeError(
            f"handle.result() inside a workflow waits only for a child this run started "
            f"(with wf.start()); run {handle.run_id} is not one"
        )
    call = ctx.begin("result", workflow.name)
    return tracked(ctx, call, _wait_for_child, workflow, handle.run_id, timeout)


async def _wait_for_child(
    ctx: RunContext,
    call: Call,
    workflow: Workflow[Any, Any],
    child_id: uuid.UUID,
    timeout: float | None,
) -> Any:
    record = call.record
    if record is not None and record.status == "failed" and record.output == _TIMED_OUT:
        raise _timed_out(child_id, call.key)
    if record is not None and record.status in ("completed", "failed"):
        return _outcome(workflow, child_id, record.status, record.output, record.error)
    if record is not None:  # an armed timeout: keep its deadline
        deadline = epoch(record.retry_at)
    elif timeout is not None:
        deadline = ctx.execution.clock() + timeout
        await write(ctx, key=call.key, seq=call.seq, kind="result", name=workflow.name,
                    status="waiting", retry_in=timeout)  # fmt: skip
    else:
        deadline = None
    return await _settle(ctx, call, "result", workflow, child_id, deadline)


def _timed_out(child_id: uuid.UUID, key: str) -> TimeoutError:
    return TimeoutError(f"child run {child_id} did not finish before the timeout ({key})")


def _replayed(
    workflow: Workflow[Any, Any],
    child_id: uuid.UUID,
    status: str,
    output: Any,
    error: Any,
    wait: bool,
    ctx: RunContext,
) -> Any:
    if not wait:
        return _handle(ctx.execution.runtime, child_id, workflow, ctx.run_id)
    return _outcome(workflow, child_id, status, output, error)


def _outcome(
    workflow: Workflow[Any, Any], child_id: uuid.UUID, status: str, output: Any, error: Any
) -> Any:
    if status == "completed":
        return workflow.signature.decode_result(output)
    info = error if error is None or hasattr(error, "type") else error_info(error)
    if info is not None and info.code == RunCancelled.code:
        raise RunCancelled(child_id)
    raise WorkflowFailed(child_id, info or error_info({}))


def _handle(
    runtime: Runtime, child_id: uuid.UUID, workflow: Workflow[Any, Any], parent: uuid.UUID
) -> RunHandle[Any]:
    if runtime.make_handle is None:
        raise RuntimeError("this execution cannot hand out run handles (no client)")
    handle: RunHandle[Any] = runtime.make_handle(child_id, workflow, parent)
    return handle


def _check_limits(ctx: RunContext, ordinal: int, settings: Any) -> None:
    if ctx.depth + 1 > settings.max_child_depth:
        raise ChildLimitExceeded(
            f"run {ctx.run_id} is at depth {ctx.depth}; a child would exceed "
            f"max_child_depth={settings.max_child_depth}"
        )
    if ordinal > settings.max_children_per_run:
        raise ChildLimitExceeded(
            f"run {ctx.run_id} would start child number {ordinal}, over "
            f"max_children_per_run={settings.max_children_per_run}"
        )
