"""``RunHandle``: what app code holds after starting a run."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

import anyio

from durable._foundation.codec import decode_error, decode_json
from durable._foundation.faults import through_outages
from durable._foundation.views import Progress, RunDetail, RunStatus, progress_of
from durable._runs.deliveries import SignalDelivery
from durable._runs.operations import get_event, wait_progress
from durable._runs.scoping import require_in_resource
from durable._store.listener import Listener, Signal
from durable._workflow import context as _context
from durable._workflow import handle_calls as _handle_calls
from durable.errors import RunCancelled, RunNotFound, WorkflowFailed

if TYPE_CHECKING:
    from durable._client.client import Client
    from durable._workflow.decorators import Workflow

__all__ = ["RunHandle"]

R = TypeVar("R")
_log = logging.getLogger("durable.client")


class RunHandle(Generic[R]):
    """A reference to one run: wait for its result, read its status, or act on it."""

    def __init__(
        self,
        client: Client,
        run_id: UUID,
        workflow: Workflow[Any, R] | None = None,
        *,
        created: bool = True,
        resource_id: str | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.workflow = workflow
        self.resource_id = resource_id
        """The resource this handle is scoped to: a run of another one is not found."""
        self._scope_checked = resource_id is None
        self.created = created
        """False when an idempotency key or run id matched an existing run."""
        self._news: Signal | None = None
        """Set by start(): a subscription made before the run existed (see result())."""
        self.parent_run_id: UUID | None = None
        """The run that started this one with ``wf.start()``, for a handle made there."""

    async def _in_scope(self) -> None:
        """``RunNotFound`` when a scoped handle names a run of another resource (checked
        once: a run's resource never changes)."""
        if not self._scope_checked:
            await require_in_resource(self.client.runtime, self.run_id, self.resource_id)
            self._scope_checked = True

    def __repr__(self) -> str:
        name = self.workflow.name if self.workflow else "?"
        return f"<RunHandle {name} {self.run_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunHandle) and other.run_id == self.run_id

    def __hash__(self) -> int:
        return hash(self.run_id)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the run to finish and return its output.

        Wakes on NOTIFY when the run finishes, re-reading the row on a fallback interval;
        the reads of a client's concurrent waiters leave together (``OutcomeReader``).
        A notification is only a hint: the outcome is read from the run's row, or handed
        over in-process by the execution of this engine that committed it.
        Raises ``WorkflowFailed`` (with the recorded error) when the run failed,
        ``RunCancelled`` when it was cancelled, and ``TimeoutError`` after ``timeout`` seconds.

        Inside the workflow that started this run as a child, it is a durable wait: the
        workflow parks until the child finishes (or ``timeout`` passes, by the database
        clock), and replays return the recorded outcome.
        """
        ctx = _context.workflow_context()
        if ctx is not None:
            from durable._workflow.children import wait_for_child

            outcome: R = await wait_for_child(ctx, self, timeout)
            return outcome
        await self._in_scope()
        runtime = self.client.runtime
        poll = runtime.settings.poll_interval
        with anyio.fail_after(timeout):
            news, self._news = self._news, None
            # Subscribed before the run existed, no notification can have been missed: wait
            # for one instead of reading the row first.
            if news is not None:
                try:
                    await _next_change(news, poll, runtime.listener, self.run_id)
                finally:
                    runtime.listener.unsubscribe(self.run_id, news)
                if news.outcome is not None:
                    return self._outcome(*news.outcome)
            async with runtime.listener.watch(self.run_id) as changed:
                read = f"reading run {self.run_id}"
                while True:
                    row = await through_outages(
                        lambda: runtime.reader.read(self.run_id), _log, read
                    )
                    if row is None:
                        raise RunNotFound(self.run_id)
                    if RunStatus(row.status).finished:
                        return self._outcome(row.status, row.output, row.error)
                    await _next_change(changed, poll, runtime.listener, self.run_id)
                    if changed.outcome is not None:
                        return self._outcome(*changed.outcome)

    def _outcome(self, status: str, output: str | None, error: str | None) -> R:
        if status == RunStatus.FAILED:
            info = decode_error(error)
            assert info is not None
            raise WorkflowFailed(self.run_id, info)
        if status == RunStatus.CANCELLED:
            raise RunCancelled(self.run_id)
        value = decode_json(output)
        if self.workflow is None:
            plain: R = value
            return plain
        typed: R = self.workflow.signature.decode_result(value)
        return typed

    async def status(self) -> RunStatus:
        """The run's current status (inside a workflow: recorded, as first read)."""
        if (ctx := _context.workflow_context()) is not None:
            return await _handle_calls.status(ctx, self)
        await self._in_scope()
        row = await self.client.runtime.store.run_outcome(self.run_id)
        if row is None:
            raise RunNotFound(self.run_id)
        return RunStatus(row.status)

    async def cancel(self) -> bool:
        """Cancel the run and its unfinished children (see ``Engine.cancel``); inside a
        workflow the outcome is recorded, so a replay does not cancel again."""
        if (ctx := _context.workflow_context()) is not None:
            return await _handle_calls.cancel(ctx, self)
        return await self.client.cancel(self.run_id, resource_id=self.resource_id)

    async def signal(
        self, name: str, payload: Any = None, *, idempotency_key: str | None = None
    ) -> SignalDelivery:
        """Send a signal to the run (see ``Engine.signal``); inside a workflow it is sent
        once and its delivery recorded."""
        if (ctx := _context.workflow_context()) is not None:
            return await _handle_calls.signal(ctx, self.run_id, name, payload, idempotency_key)
        return await self.client.signal(
            self.run_id, name, payload, idempotency_key=idempotency_key,
            resource_id=self.resource_id,
        )  # fmt: skip

    async def get_event(self, key: str) -> Any:
        """The latest value the run published with ``durable.set_event(key, ...)``, or None
        (inside a workflow: recorded, as first read)."""
        if (ctx := _context.workflow_context()) is not None:
            return await _handle_calls.event(ctx, self.run_id, key)
        await self._in_scope()
        return await get_event(self.client.runtime, self.run_id, key)

    async def wait(
        self,
        step: str | None = None,
        signal: str | None = None,
        event: str | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Wait until the step at cursor key ``step`` is recorded, a ``signal`` of that name
        was consumed, or ``event`` is set. True when it happened; False when the run
        finished without it; ``TimeoutError`` after ``timeout`` seconds. Refused inside a
        workflow (not replay-safe): use ``result()`` or ``get_event()`` there."""
        if _context.workflow_context() is not None:
            raise _handle_calls.refuse("wait")
        await self._in_scope()
        return await wait_progress(
            self.client.runtime, self.run_id, step=step, signal=signal, event=event,
            timeout=timeout,
        )  # fmt: skip

    async def progress(self) -> Progress:
        """How far the run got: completed steps, and the fraction done when the workflow
        declares one (``durable.set_progress``) or ``expected_steps``. One small query;
        works from a process without the workflow's code."""
        await self._in_scope()
        row = await self.client.runtime.store.progress_of_run(self.run_id)
        if row is None:
            raise RunNotFound(self.run_id)
        return progress_of(
            row["status"], row["completed_steps"], row["progress_fraction"],
            row["progress_message"], row["expected_steps"],
        )  # fmt: skip

    async def detail(self) -> RunDetail:
        """Everything recorded about the run (same as ``engine.get_run``). Refused inside
        a workflow (not replay-safe)."""
        if _context.workflow_context() is not None:
            raise _handle_calls.refuse("detail")
        return await self.client.get_run(self.run_id, resource_id=self.resource_id)


async def _next_change(changed: Signal, poll: float, listener: Listener, run_id: UUID) -> None:
    """Wait for a hint that the run's status may have changed (progress notifications of
    steps and events do not count), or for the next fallback poll.

    While an execution of this process writes the run's outcome, a status notification is
    that outcome's: the waiter holds on for the handover (or the wake that says there is
    none) instead of racing it with a read."""
    while await changed.wait(_until_next_poll(poll)):
        if changed.outcome is not None:
            return
        if changed.news not in ("step", "event") and not listener.finishing_here(run_id):
            return


def _until_next_poll(interval: float) -> float:
    """Seconds to the next multiple of ``interval`` on this process's monotonic clock:
    the waiting handles poll on these shared instants, so their reads leave together
    (``OutcomeReader``) however far apart they started waiting."""
    now = time.monotonic()
    return (math.floor(now / interval) + 1) * interval - now
