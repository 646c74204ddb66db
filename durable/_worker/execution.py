"""One execution attempt of a claimed run: replay its records, run on, then finish or park."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import anyio

from durable._foundation.codec import encode_error, to_json
from durable._foundation.faults import INFRASTRUCTURE_ERRORS
from durable._foundation.limits import check_payload
from durable._foundation.telemetry import ExecutingRun
from durable._runs.runtime import Runtime
from durable._store.record_writer import Finish, StepWrite
from durable._store.rows import ClaimedRun
from durable._store.store import UNSTORABLE_ERRORS
from durable._workflow import context as _context
from durable._workflow.context import Call, ParkRequest, Record, RunContext, Suspended
from durable._workflow.decorators import Workflow
from durable._workflow.run_retries import retry_after_failure, retryable
from durable.errors import (
    LeaseLost,
    NonDeterminismError,
    RunAttemptsExhausted,
    SerializationError,
    WorkflowTimeout,
)

__all__ = ["Execution"]

_log = logging.getLogger("durable.worker")
T = TypeVar("T")


class Execution:
    """Runs one claimed run to its end, its next park, or the loss of its lease."""

    def __init__(self, runtime: Runtime, row: ClaimedRun, workflow: Workflow[Any, Any]) -> None:
        self.runtime = runtime
        self.workflow = workflow
        self.run_id: UUID = row.id
        self.attempt: int = row.attempt
        self.row = row
        runtime.caught_up(row.claimed_at)  # its timers compare against a clock not behind it
        self.scope = anyio.CancelScope()
        self.parked = False
        """True once this execution parked its run (the worker then re-reads its timers)."""
        self.ending = False
        """True from just before the write that ends this claim (finish, park, automatic
        retry): the run may stop being 'running' by this execution's own hand, and that
        write, fenced by the claim, reports a lost lease itself."""
        self.on_ending: Callable[[Execution], None] | None = None
        """Told once when ``ending`` becomes True (the worker frees the run's slot)."""
        self.hooks = runtime.hooks.bind(
            self.run_id, workflow.name, workflow.version, workflow.hooks, self.attempt
        )
        """Lifecycle hook events of this execution (a no-op when no hook applies)."""

    def clock(self) -> float:
        return self.runtime.clock()

    def _end_claim(self) -> None:
        if not self.ending:
            self.ending = True
            if self.on_ending is not None:
                self.on_ending(self)

    def _traced(self) -> ExecutingRun:
        row = self.row
        return ExecutingRun(
            self.workflow.name, self.workflow.version, self.run_id, self.attempt, row.queue,
            self.runtime.worker_id, row.traceparent, row.tracestate,
        )  # fmt: skip

    def _interrupted(self) -> bool:
        return self.scope.cancelled_caught

    async def run(self) -> None:
        """Execute the workflow body with this run's records; never raises."""
        ctx = RunContext.load(
            _records(self.row.records),
            run_id=self.run_id,
            workflow=self.workflow.name,
            version=self.workflow.version,
            attempt=self.attempt,
            execution=self,
            depth=self.row.depth,
            traceparent=self.row.traceparent,
            tracestate=self.row.tracestate,
        )
        ctx.step_timeout, ctx.step_retries = self.runtime.settings.step_defaults(
            self.workflow.step_timeout, self.workflow.step_retries
        )
        token = _context.enter(ctx)
        try:
            with self.runtime.telemetry.executing(self._traced(), self._interrupted), self.scope:
                await self._run_body(ctx)
        except LeaseLost:
            _log.warning("run %s: lease lost, leaving it to its new owner", self.run_id)
        except Exception:
            _log.exception("run %s: could not record its outcome", self.run_id)
        finally:
            ctx.parked.set()  # unblock branches still waiting to park
            _context.leave(token)

    async def _run_body(self, ctx: RunContext) -> None:
        if self.row.exhausted:  # a poison run: failing it beats crash-looping workers
            lost = self.row.lost_executions
            _log.error("run %s: %d executions in a row lost their lease", self.run_id, lost)
            await self._finish_failed(RunAttemptsExhausted(self.run_id, lost))
            return
        self.hooks.run_began()
        try:
            args, kwargs = self.workflow.signature.decode_args(self.row.input)
            deadline = self.row.deadline_at
            if deadline is None:  # most runs: no frame between the body and the worker
                result = await self.workflow.fn(*args, **kwargs)
            else:
                body = functools.partial(self.workflow.fn, *args, **kwargs)
                result = await self._with_deadline(deadline, body)
            output = self.workflow.signature.encode_result(result)
            check_payload(
                f"the result of workflow {self.workflow.name}", output,
                self.runtime.settings.max_output_bytes,
            )  # fmt: skip
        except Suspended:
            return
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            await self._finish_failed(ctx.fatal or exc)
            return
        if ctx.fatal is not None:  # the workflow caught a fatal error and returned anyway
            await self._finish_failed(ctx.fatal)
            return
        await self.flush(ctx)  # inline sleeps and now() values belong in the timeline
        await self._finish("completed", output, None)

    async def _with_deadline(self, deadline: datetime, body: Callable[[], Awaitable[Any]]) -> Any:
        """Await the workflow body, cancelled at the run's deadline (the running step sees
        the cancellation); a run claimed past its deadline runs no code at all."""
        remaining = deadline.timestamp() - self.clock()
        if remaining <= 0:
            raise self._timed_out()
        with anyio.move_on_after(remaining) as scope:
            return await body()
        if scope.cancelled_caught:
            raise self._timed_out()
        raise AssertionError("unreachable: the workflow neither returned nor timed out")

    def _timed_out(self) -> WorkflowTimeout:
        return WorkflowTimeout(f"run {self.run_id} of workflow {self.workflow.name} timed out")

    async def _finish_failed(self, exc: BaseException) -> None:
        if isinstance(exc, LeaseLost):
            raise exc
        if isinstance(exc, NonDeterminismError | SerializationError):
            _log.error("run %s failed: %s", self.run_id, exc)
        self.runtime.telemetry.record_failure(exc)
        error = to_json(encode_error(exc))
        if self.workflow.retry.retries and retryable(exc) and await self._retry_later(error):
            return
        cascade = isinstance(exc, WorkflowTimeout)  # like a cancel: children go too
        await self._finish("failed", None, error, cascade=cascade)

    async def _retry_later(self, error: str) -> bool:
        """Requeue the failed run after its backoff when it has automatic retries left."""
        self._end_claim()  # requeued or failed: the claim ends either way
        try:
            delay = await retry_after_failure(
                self.runtime.store, self.run_id, self.attempt, error, self.workflow.retry
            )
        except INFRASTRUCTURE_ERRORS as exc:
            raise LeaseLost(f"run {self.run_id}: database unreachable ({exc!r})") from exc
        if delay is None:
            return False
        _log.info("run %s failed; retrying it in %.1fs", self.run_id, delay)
        self.parked = True  # a new wake time: the worker re-reads its next timer
        return True

    async def _finish(
        self,
        status: str,
        output: str | None,
        error: str | None,
        *,
        fallback: bool = False,
        cascade: bool = False,
    ) -> None:
        # Not shielded: a write cut short by cancellation is simply not committed (or is),
        # and the run is replayed from its records either way.
        finish = Finish(self.run_id, self.attempt, status, output, error, cascade)
        self._end_claim()
        listener = self.runtime.listener
        listener.begin_finishing(self.run_id)
        try:
            await self._write_finish(finish, fallback)
        finally:
            listener.end_finishing(self.run_id)

    async def _write_finish(self, finish: Finish, fallback: bool) -> None:
        status, output, error = finish.status, finish.output_json, finish.error_json
        try:
            done = await self.runtime.writer.finishes.write(finish)
        except INFRASTRUCTURE_ERRORS as exc:
            raise LeaseLost(f"run {self.run_id}: database unreachable ({exc!r})") from exc
        except UNSTORABLE_ERRORS as exc:
            if fallback:
                raise
            # Retrying would refuse it again, lease after lease: the run fails, saying why.
            what = "result" if status == "completed" else "error"
            failure = unstorable(f"the {what} of run {self.run_id}", exc)
            _log.error("run %s failed: %s", self.run_id, failure)
            self.runtime.telemetry.record_failure(failure)
            await self._finish(
                "failed", None, to_json(encode_error(failure)),
                fallback=True, cascade=finish.cancel_children,
            )  # fmt: skip
            return
        if not done:
            raise LeaseLost(f"run {self.run_id} finished elsewhere or its lease was lost")
        # Committed: waiters in this process take the outcome without reading the row.
        self.runtime.listener.finished_here(self.run_id, (status, output, error))
        started_at = self.row.started_at
        elapsed = None if started_at is None else self.clock() - started_at.timestamp()
        self.runtime.telemetry.run_finished(self.workflow.name, status, elapsed)
        self.hooks.run_finished(status, error, started_at, self.clock())

    # -- services for durable calls (see _replay, _timers, _signals, _children) -----------

    async def record(self, ctx: RunContext, **fields: Any) -> bool:
        """Write one record under this execution's claim; False when the claim is lost.

        Not shielded (a cancel scope costs more than the rest of the call): a cancellation
        mid-write leaves the step recorded or not, and a replay copes with both."""
        try:
            if ctx.pending:
                await self._flush_pending(ctx)
            return await self.runtime.writer.steps.write(
                StepWrite(self.run_id, self.attempt, **fields)
            )
        except INFRASTRUCTURE_ERRORS as exc:
            raise self.unreachable(ctx, exc) from exc
        except UNSTORABLE_ERRORS as exc:
            raise self._unstorable(ctx, f"the outcome of {fields.get('key')}", exc) from exc

    async def guarded(self, ctx: RunContext, call: Awaitable[T]) -> T:
        """Await a store call made for the workflow; an infrastructure error (see _faults)
        ends this execution (the run resumes after its lease) instead of failing the run.
        Every store call made on a workflow's behalf goes through here or ``record``."""
        try:
            return await call
        except INFRASTRUCTURE_ERRORS as exc:
            raise self.unreachable(ctx, exc) from exc
        except UNSTORABLE_ERRORS as exc:
            raise self._unstorable(ctx, f"a durable call of run {self.run_id}", exc) from exc

    def _unstorable(self, ctx: RunContext, what: str, exc: Exception) -> SerializationError:
        # Fatal, whatever the workflow catches: left unrecorded, the call would run again
        # on the next execution, and be refused again.
        error = unstorable(what, exc)
        ctx.fatal = ctx.fatal or error
        return error

    def unreachable(self, ctx: RunContext, exc: BaseException) -> LeaseLost:
        error = LeaseLost(f"run {self.run_id}: database unreachable ({exc!r})")
        ctx.fatal = ctx.fatal or error
        return error

    async def flush(self, ctx: RunContext) -> None:
        """Write the values of synchronous recorded calls made since the last write."""
        if ctx.pending:
            with anyio.CancelScope(shield=True):
                await self._flush_pending(ctx)

    async def _flush_pending(self, ctx: RunContext) -> None:
        pending, ctx.pending = ctx.pending, []
        store = self.runtime.store
        if not await self.guarded(ctx, store.record_values(self.run_id, self.attempt, pending)):
            raise self._lost(ctx)

    def _lost(self, ctx: RunContext) -> LeaseLost:
        error = LeaseLost(f"run {self.run_id} is no longer held by this worker")
        ctx.fatal = ctx.fatal or error
        return error

    async def finish_call(self, ctx: RunContext, call: Call) -> None:
        """A durable call recorded (or gave up its slot): park if it was the last in flight
        and another branch asked to park."""
        if call.done:
            return
        call.done = True
        ctx.inflight -= 1
        if ctx.inflight == 0 and ctx.park_requests and not ctx.parked.is_set():
            await self._park_now(ctx)

    async def wait_until(self, ctx: RunContext, call: Call, epoch: float | None) -> None:
        """Wait for a database-clock time: in-process when short, else park the run."""
        if epoch is None:
            return
        remaining = epoch - self.clock()
        if remaining <= 0:
            return
        if remaining <= self.runtime.settings.inline_wait_seconds:
            await anyio.sleep(remaining)
            return
        await self.park(ctx, call, ParkRequest("sleeping", epoch))

    async def park(self, ctx: RunContext, call: Call, request: ParkRequest) -> NoReturn:
        """Give up this call's place; the run parks once no other call is in flight.

        Always raises Suspended: the execution ends and the run resumes when woken.
        """
        ctx.park_requests.append(request)
        await self.finish_call(ctx, call)
        if not ctx.parked.is_set():
            await ctx.parked.wait()
        ctx.check()
        raise Suspended

    async def _park_now(self, ctx: RunContext) -> None:
        self.parked = True
        self._end_claim()
        requests = ctx.park_requests
        statuses = {r.status for r in requests}
        # A pause outranks the rest: the run waits for an operator before anything else.
        status = next(st for st in ("paused", "waiting", "sleeping") if st in statuses)
        wakes = [r.wake_at for r in requests if r.wake_at is not None]
        wake_at = datetime.fromtimestamp(min(wakes), UTC) if wakes else None
        waiting_for = [r.waiting_for for r in requests if r.waiting_for]
        pending, ctx.pending = ctx.pending, []
        try:
            with anyio.CancelScope(shield=True):
                parked = await self.runtime.store.park(
                    self.run_id, self.attempt, status, wake_at, waiting_for, pending
                )
            if not parked:
                self._lost(ctx)
            else:
                self.runtime.telemetry.suspended(status, wake_at, waiting_for)
                self.hooks.run_suspended(status, wake_at, waiting_for)
        except INFRASTRUCTURE_ERRORS as exc:
            # No raise: this runs as a durable call ends (tracked's finally). Every branch
            # waiting to park raises the fatal error from ctx.check() once parked is set.
            self.unreachable(ctx, exc)
        finally:
            ctx.parked.set()


def unstorable(what: str, exc: Exception) -> SerializationError:
    """The error a run fails with when Postgres refuses to store one of its outcomes."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if len(detail) > 500:
        detail = detail[:500] + "..."
    return SerializationError(
        f"{what} could not be stored: Postgres refused it ({type(exc).__name__}: {detail})"
    )


def _records(raw: str | None) -> list[Record]:
    if not raw:
        return []
    return [
        Record(
            key=item["key"],
            seq=item["seq"],
            kind=item["kind"],
            name=item["name"],
            status=item["status"],
            output=item["output"],
            error=item["error"],
            attempt=item["attempt"],
            retry_at=item["retry_at"],
        )
        for item in json.loads(raw)
    ]
