"""Delivery of lifecycle hook events, off the path of runs and of the poller.

Executions put events on one bounded in-memory queue per engine without waiting; one task
in the engine's task group takes them off in order and calls the matching callbacks, one
at a time (async ones awaited, sync ones in a worker thread). When the queue is full an
event is dropped and counted, with a warning, instead of making the run wait: delivery is
in-process and at most once, and events still queued when the process dies are lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import anyio.to_thread
from structlog.contextvars import bind_contextvars, reset_contextvars

from durable._foundation.codec import error_info
from durable._foundation.hooks import (
    Entry,
    HookEvent,
    Hooks,
    RunCancelledEvent,
    RunCompletedEvent,
    RunFailedEvent,
    RunResumedEvent,
    RunStartedEvent,
    RunSuspendedEvent,
    StepCompletedEvent,
    StepEvent,
    StepFailedEvent,
    StepRetryingEvent,
    StepStartedEvent,
)
from durable.errors import ErrorInfo

if TYPE_CHECKING:
    from durable._runs.registry import Registry

__all__ = ["DEFAULT_QUEUE_SIZE", "NO_HOOKS", "HookDispatcher", "RunHooks"]

_log = logging.getLogger("durable.hooks")
DEFAULT_QUEUE_SIZE = 1024
_BATCH = 256  # events taken off the queue at once
_GATHER_SECONDS = 0.005  # how long an event may wait for others to share its delivery
Pending = tuple[type[HookEvent], "RunHooks", float, dict[str, Any]]
"""An event not built yet: its class, its run, when (epoch seconds) and its own fields.
The drainer builds it, so a transition only pays for a tuple and a queue append."""
Item = tuple[Pending, tuple[Hooks, ...]]


class HookDispatcher:
    """One engine's hook queue and the task that drains it."""

    def __init__(self, hooks: Hooks | None = None, size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.hooks = hooks if hooks is not None else Hooks()
        """The engine's own hooks (``engine.hooks``): they see every run."""
        self.size = size
        self._send, self._receive = anyio.create_memory_object_stream[Item](size)
        self.dropped = 0
        """Events dropped because the queue was full."""
        self._overflowing = False
        self._drained = anyio.Event()
        self._running = False

    # -- producing ---------------------------------------------------------------------

    def sources(self, workflow_hooks: Hooks | None) -> tuple[Hooks, ...]:
        """The hook sets that apply to a run of a workflow with ``workflow_hooks``."""
        if workflow_hooks:
            return (self.hooks, workflow_hooks) if self.hooks else (workflow_hooks,)
        return (self.hooks,) if self.hooks else ()

    def bind(
        self, run_id: UUID, workflow: str, version: int, hooks: Hooks | None, attempt: int
    ) -> RunHooks:
        """The emitter of one execution of a run of ``workflow`` (whose own hooks are
        ``hooks``); a no-op when no hook applies to the run."""
        sources = self.sources(hooks)
        if not sources:
            return NO_HOOKS
        return RunHooks(self, sources, run_id, workflow, version, attempt)

    def put(self, event: Pending, sources: tuple[Hooks, ...]) -> None:
        """Queue an event without waiting; drop (and count) it when the queue is full."""
        try:
            self._send.send_nowait((event, sources))
        except anyio.WouldBlock:
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                _log.warning(
                    "hook queue full (%d events): dropping lifecycle hook events until the "
                    "hooks catch up (%d dropped so far)", self.size, self.dropped,
                )  # fmt: skip
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the engine is closing: nothing will deliver it

    def run_cancelled(self, rows: Sequence[Any], registry: Registry) -> None:
        """Emit ``RunCancelledEvent`` for the rows ``cancel_run`` returned."""
        for row in rows:
            workflow = registry.get(row["workflow_name"], row["workflow_version"])
            sources = self.sources(None if workflow is None else workflow.hooks)
            if sources:
                run = RunHooks(
                    self, sources, row["id"], row["workflow_name"], row["workflow_version"],
                    row["attempt"],
                )  # fmt: skip
                run.emit(RunCancelledEvent)

    # -- consuming ---------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver queued events until ``close``; never raises for a callback's error."""
        self._running = True
        try:
            async with self._receive:
                async for item in self._receive:
                    # Let the transitions of the next few milliseconds queue up: one wake-up
                    # of this task per batch, not per event, on the loop the runs share.
                    await anyio.sleep(_GATHER_SECONDS)
                    await _deliver(self._batch(item))
                    if self._overflowing and not self._receive.statistics().current_buffer_used:
                        self._overflowing = False
                        _log.warning(
                            "hook queue has room again; %d lifecycle hook event(s) dropped "
                            "in all", self.dropped,
                        )  # fmt: skip
        finally:
            self._drained.set()

    def _batch(self, first: Item) -> list[Item]:
        """``first`` and what is queued behind it now: their sync callbacks share a thread
        hop, which keeps sync hooks from falling behind a busy worker."""
        batch = [first]
        while len(batch) < _BATCH:
            try:
                batch.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        return batch

    async def close(self, grace: float) -> None:
        """Accept no more events; deliver the queued ones within ``grace`` seconds."""
        self._send.close()
        if not self._running:
            return
        with anyio.move_on_after(grace):
            await self._drained.wait()
        left = self._receive.statistics().current_buffer_used
        if not self._drained.is_set() and left:
            _log.warning("engine closing: %d lifecycle hook event(s) not delivered", left)


async def _deliver(batch: list[Item]) -> None:
    """Call the callbacks of a batch of events in order: async ones awaited here, runs of
    sync ones in one worker-thread call each."""
    in_thread: list[tuple[list[Entry], HookEvent]] = []
    for pending, sources in batch:
        event = _build(pending)  # built here, off the run's path
        entries = [entry for hooks in sources for entry in hooks.matching(event)]
        if not entries:
            continue
        if all(not entry.is_async for entry in entries):
            in_thread.append((entries, event))
            continue
        if in_thread:
            await anyio.to_thread.run_sync(_call_all, in_thread)
            in_thread = []
        with _Bound(event):
            for entry in entries:
                if entry.is_async:
                    with _Guarded(entry, event):
                        await entry.fn(event)  # type: ignore[misc]
                else:  # a sync hook beside async ones: in a thread of its own
                    with _Guarded(entry, event):
                        await anyio.to_thread.run_sync(entry.fn, event)
    if in_thread:
        await anyio.to_thread.run_sync(_call_all, in_thread)


def _call_all(calls: list[tuple[list[Entry], HookEvent]]) -> None:
    for entries, event in calls:
        with _Bound(event):
            for entry in entries:
                with _Guarded(entry, event):
                    entry.fn(event)


def _build(pending: Pending) -> HookEvent:
    kind, run, at, fields = pending
    if "started" in fields:  # a step event: its duration, from the attempt's start
        fields["duration"] = max(0.0, at - fields.pop("started").timestamp())
    if "error_json" in fields:
        fields["error"] = _error(fields.pop("error_json"))
    return kind(
        run_id=run.run_id, workflow=run.workflow, version=run.version, attempt=run.attempt,
        at=datetime.fromtimestamp(at, UTC), **fields,
    )  # fmt: skip


class _Bound:
    """Binds the run's log keys (structlog contextvars) around the callbacks of one event."""

    __slots__ = ("event", "tokens")

    def __init__(self, event: HookEvent) -> None:
        self.event = event
        self.tokens: Any = None

    def __enter__(self) -> None:
        event = self.event
        self.tokens = bind_contextvars(
            run_id=str(event.run_id), workflow=event.workflow, run_attempt=event.attempt,
            cursor=_cursor(event),
        )  # fmt: skip

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        reset_contextvars(**self.tokens)


class _Guarded:
    """Logs what one callback raises, with the run's context, and swallows it."""

    __slots__ = ("entry", "event")

    def __init__(self, entry: Entry, event: HookEvent) -> None:
        self.entry, self.event = entry, event

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if not isinstance(exc, Exception):
            return False  # nothing raised, or a cancellation: let it through
        event, cursor = self.event, _cursor(self.event)
        _log.error(
            "hook %s raised on %s of run %s (workflow %s, attempt %d%s)",
            self.entry.label, type(event).__name__, event.run_id, event.workflow,
            event.attempt, f", {cursor}" if cursor else "",
            exc_info=exc,
            extra={"run_id": str(event.run_id), "workflow": event.workflow,
                   "run_attempt": event.attempt, "cursor": cursor},
        )  # fmt: skip
        return True  # a hook's error never reaches the run or the worker


def _cursor(event: HookEvent) -> str | None:
    return event.cursor_key if isinstance(event, StepEvent) else None


def _error(error_json: str | None) -> ErrorInfo:
    return error_info(json.loads(error_json) if error_json else {})


class RunHooks:
    """The events of one execution of one run, emitted at its real transitions."""

    __slots__ = ("_dispatcher", "_sources", "attempt", "run_id", "version", "workflow")

    def __init__(
        self,
        dispatcher: HookDispatcher | None,
        sources: tuple[Hooks, ...],
        run_id: UUID,
        workflow: str,
        version: int,
        attempt: int,
    ) -> None:
        self._dispatcher = dispatcher
        self._sources = sources
        self.run_id, self.workflow, self.version, self.attempt = run_id, workflow, version, attempt

    def emit(self, kind: type[HookEvent], **fields: Any) -> None:
        """Queue an event of ``kind`` with its own ``fields`` (built by the drainer)."""
        if self._dispatcher is not None:
            self._dispatcher.put((kind, self, time.time(), fields), self._sources)

    def run_began(self) -> None:
        """An execution begins: the run's first (``RunStartedEvent``) or a later one."""
        if self._dispatcher is not None:
            self.emit(RunStartedEvent if self.attempt == 1 else RunResumedEvent)

    def run_finished(
        self, status: str, error_json: str | None, started_at: datetime | None, now: float
    ) -> None:
        """The run's outcome was stored (``status`` completed or failed)."""
        if self._dispatcher is None:
            return
        duration = None if started_at is None else max(0.0, now - started_at.timestamp())
        if status == "completed":
            self.emit(RunCompletedEvent, duration=duration)
        else:
            self.emit(RunFailedEvent, error_json=error_json, duration=duration)

    def run_suspended(
        self, status: str, wake_at: datetime | None, waiting_for: Sequence[str]
    ) -> None:
        """The run parked."""
        if self._dispatcher is not None:
            waits = tuple(waiting_for)
            self.emit(RunSuspendedEvent, status=status, wake_at=wake_at, waiting_for=waits)

    def step_started(self, step: str, key: str, attempt: int) -> None:
        """A step attempt's body is about to run."""
        if self._dispatcher is not None:
            self.emit(StepStartedEvent, step=step, cursor_key=key, step_attempt=attempt)

    def step_completed(self, step: str, key: str, attempt: int, started: datetime) -> None:
        """A step attempt's result was recorded."""
        if self._dispatcher is not None:
            self.emit(
                StepCompletedEvent, step=step, cursor_key=key, step_attempt=attempt,
                started=started,
            )  # fmt: skip

    def step_failed(
        self,
        step: str,
        key: str,
        attempt: int,
        started: datetime,
        error_json: str,
        retry_in: float | None,
    ) -> None:
        """A failed step attempt was recorded: ``StepRetryingEvent``, or ``StepFailedEvent``
        when it was the last."""
        if self._dispatcher is None:
            return
        if retry_in is None:
            self.emit(
                StepFailedEvent, step=step, cursor_key=key, step_attempt=attempt,
                started=started, error_json=error_json,
            )  # fmt: skip
        else:
            self.emit(
                StepRetryingEvent, step=step, cursor_key=key, step_attempt=attempt,
                started=started, error_json=error_json, retry_in=retry_in,
            )  # fmt: skip


NO_HOOKS = RunHooks(None, (), UUID(int=0), "", 0, 0)
"""The emitter of runs no hook applies to: every method returns at once."""
