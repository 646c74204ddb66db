"""Span names, attributes, metrics and log binding: durable runs in the user's own telemetry.

Only the OpenTelemetry *API* is used. An engine takes ``tracer_provider`` / ``meter_provider``
when given and the global providers otherwise; it never installs a provider, so without an
SDK every call here is a cheap no-op.

Spans (run ids never go into names, only into attributes):

- ``start_workflow {name}`` (PRODUCER), in the caller of ``start()``. Its W3C trace context
  (``traceparent`` and ``tracestate``, never baggage) is stored on the run.
- ``run_workflow {name}`` (CONSUMER), one per execution attempt, whose parent is that stored
  context: every attempt of a run, on any worker and however long it slept, is in one trace.
- ``step {name}`` (INTERNAL), one per executed attempt of a step. A replayed call has none.

Around every execution the run's ``run_id``, ``workflow``, ``attempt`` and current ``cursor``
are bound with ``structlog.contextvars``, so user log lines inside workflows carry them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from structlog.contextvars import bind_contextvars, reset_contextvars

from durable._foundation.metrics import (
    INSTRUMENTATION_NAME,
    QUEUE_NAME,
    Instruments,
    QueueDepth,
    ReadyCounter,
    instruments,
    version,
)

__all__ = [
    "EVENT_CHILD_START",
    "EVENT_INTERRUPTED",
    "EVENT_SIGNAL_WAIT",
    "EVENT_SLEEP",
    "EVENT_SUSPENDED",
    "ExecutingRun",
    "QueueDepth",
    "StartedRun",
    "Telemetry",
    "add_event",
    "bind_cursor",
    "current_traceparent",
    "error_type",
    "extract_context",
    "record_failure",
]


# -- attribute keys -------------------------------------------------------------------------
WORKFLOW_NAME = "durable.workflow.name"
WORKFLOW_VERSION = "durable.workflow.version"
RUN_ID = "durable.run.id"
RUN_ATTEMPT = "durable.run.attempt"
RUN_CREATED = "durable.run.created"
RUN_RESULT = "durable.run.result"
STEP_NAME = "durable.step.name"
STEP_CURSOR = "durable.step.cursor"
STEP_ATTEMPT = "durable.step.attempt"
STEP_RESULT = "durable.step.result"
WORKER_ID = "durable.worker.id"
ERROR_TYPE = "error.type"

# -- span events on the run span (the durable waits add theirs with add_event) --------------
EVENT_SUSPENDED = "durable.run.suspended"
"""The run parked (sleeping or waiting) and this execution attempt ends."""
EVENT_INTERRUPTED = "durable.run.interrupted"
"""The execution was cancelled (shutdown, lost lease) before the run finished or parked."""
EVENT_SLEEP = "durable.sleep"
EVENT_SIGNAL_WAIT = "durable.signal.wait"
EVENT_CHILD_START = "durable.child.start"

_PROPAGATOR = TraceContextTextMapPropagator()
_log = logging.getLogger("durable.telemetry")


# -- trace context ------------------------------------------------------------------------


def current_traceparent(context: Context | None = None) -> tuple[str | None, str | None]:
    """``(traceparent, tracestate)`` of the current span (or of ``context``), to store on a
    run so its executions continue this trace; ``(None, None)`` when nothing is traced."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier.get("traceparent"), carrier.get("tracestate")


def extract_context(traceparent: str | None, tracestate: str | None) -> Context:
    """The stored context as a parent; an empty context (a new root) when none was stored."""
    if not traceparent:
        return Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier, context=Context())


def error_type(exc: BaseException) -> str:
    """``error.type``: the exception's qualified class name (builtins unqualified)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _mark_failed(span: Span, exc: BaseException) -> None:
    if not span.is_recording():
        return
    span.set_attribute(ERROR_TYPE, error_type(exc))
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def record_failure(exc: BaseException) -> None:
    """Mark the current span failed: ERROR status, ``error.type``, the exception recorded."""
    _mark_failed(trace.get_current_span(), exc)


def add_event(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
    """Add a span event to the current span (a run's span inside workflow code)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes=attributes)


def bind_cursor(key: str) -> None:
    """Bind the cursor key of the latest durable call for structlog (``cursor``)."""
    bind_contextvars(cursor=key)


# -- metrics --------------------------------------------------------------------------------


# -- the engine's telemetry -----------------------------------------------------------------


class ExecutingRun(NamedTuple):
    """Who an execution attempt is, as its spans and logs name it (a tuple: one per run)."""

    workflow: str
    version: int
    run_id: UUID
    attempt: int
    queue: str
    worker_id: str
    traceparent: str | None = None
    tracestate: str | None = None


@dataclass(slots=True)
class StartedRun:
    """What ``Telemetry.start_workflow`` yields: the context to store on the run."""

    span: Span
    traceparent: str | None
    tracestate: str | None
    telemetry: Telemetry | None = None
    workflow: str = ""

    def stored(self, run_id: UUID, created: bool) -> None:
        """Note which run the start resolved to (an idempotency key may return an old one)."""
        if created and self.telemetry is not None:
            self.telemetry.run_started(self.workflow)
        if self.span.is_recording():
            self.span.set_attribute(RUN_ID, str(run_id))
            self.span.set_attribute(RUN_CREATED, created)


class Telemetry:
    """Tracer, instruments and log binding of one engine."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        log_during_replay: bool = False,
    ) -> None:
        code_version = version()
        self.tracer: Tracer = (
            tracer_provider.get_tracer(INSTRUMENTATION_NAME, code_version)
            if tracer_provider is not None
            else trace.get_tracer(INSTRUMENTATION_NAME, code_version)
        )
        self.instruments = instruments(meter_provider)
        self.queue_depth = QueueDepth()
        self.instruments.add_source(self.queue_depth)
        self.log_during_replay = log_during_replay
        """When False, ``durable.logger`` is silent while a run replays recorded calls."""

    # -- helpers the durable waits call ---------------------------------------------------

    @staticmethod
    def event(name: str, **attributes: AttributeValue) -> None:
        """A span event on the current span, e.g. ``telemetry.event(EVENT_SLEEP, ...)``."""
        add_event(name, attributes)

    add_event = staticmethod(add_event)
    current_traceparent = staticmethod(current_traceparent)
    record_failure = staticmethod(record_failure)

    # -- spans ----------------------------------------------------------------------------

    @contextmanager
    def start_workflow(
        self, name: str, version: int, queue: str, run_id: UUID, *, root: bool = False
    ) -> Iterator[StartedRun]:
        """The PRODUCER span around storing a run; yields the trace context to store.

        ``root=True`` (runs started by a schedule) ignores the current span.
        """
        span = self.tracer.start_span(
            f"start_workflow {name}",
            context=Context() if root else None,
            kind=SpanKind.PRODUCER,
            attributes={
                WORKFLOW_NAME: name,
                WORKFLOW_VERSION: version,
                QUEUE_NAME: queue,
                RUN_ID: str(run_id),
            },
        )
        with _Active(span):
            parent, state = (
                current_traceparent() if span.get_span_context().is_valid else (None, None)
            )
            yield StartedRun(span, parent, state, self, name)

    def executing(self, run: ExecutingRun, interrupted: Callable[[], bool]) -> _Executing:
        """The CONSUMER span of one execution attempt, and the run's structlog context.
        ``interrupted`` tells, once the body ends, whether the worker cut it short."""
        name, run_id = run.workflow, str(run.run_id)
        span = self.tracer.start_span(
            f"run_workflow {name}",
            context=extract_context(run.traceparent, run.tracestate),
            kind=SpanKind.CONSUMER,
            attributes={
                WORKFLOW_NAME: name,
                WORKFLOW_VERSION: run.version,
                RUN_ID: run_id,
                RUN_ATTEMPT: run.attempt,
                QUEUE_NAME: run.queue,
                WORKER_ID: run.worker_id,
            },
        )
        logged = {"run_id": run_id, "workflow": name, "run_attempt": run.attempt}
        return _Executing(span, logged, interrupted)

    def step_attempt(
        self, run: tuple[str, str, int, str], name: str, key: str, attempt: int
    ) -> _StepAttempt:
        """The INTERNAL span of one executed step attempt, its metrics and ``cursor``;
        ``run`` is (workflow, run id, run attempt, worker id).

        A class, not a generator: this runs once per executed step, so it stays cheap.
        """
        workflow, run_id, run_attempt, worker_id = run
        span = self.tracer.start_span(
            f"step {name}",
            kind=SpanKind.INTERNAL,
            attributes={
                WORKFLOW_NAME: workflow,
                RUN_ID: run_id,
                RUN_ATTEMPT: run_attempt,
                STEP_NAME: name,
                STEP_CURSOR: key,
                STEP_ATTEMPT: attempt,
                WORKER_ID: worker_id,
            },
        )
        bind_cursor(key)  # gathered branches each log their own step's cursor
        return _StepAttempt(span, self.instruments, workflow, name)

    # -- run outcomes ---------------------------------------------------------------------

    def run_finished(self, workflow: str, status: str, elapsed: float | None) -> None:
        """A run reached a final status: count it, time it (``elapsed`` seconds since it
        started, None when unknown), and tag the current span."""
        labels = {WORKFLOW_NAME: workflow, RUN_RESULT: status}
        self.instruments.runs_finished.add(1, labels)
        if elapsed is not None:
            self.instruments.run_duration.record(max(0.0, elapsed), labels)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(RUN_RESULT, status)

    def run_started(self, workflow: str) -> None:
        """A new run was stored (``durable.runs.started``)."""
        self.instruments.runs_started.add(1, {WORKFLOW_NAME: workflow})

    def run_cancelled(self, workflow: str) -> None:
        """A run was cancelled: it finished, as far as ``durable.runs.finished`` counts."""
        self.instruments.runs_finished.add(1, {WORKFLOW_NAME: workflow, RUN_RESULT: "cancelled"})

    def signal_sent(self, kind: str) -> None:
        """One ``engine.signal``, by what became of it (``durable.signals``)."""
        self.instruments.signals.add(1, {"durable.signal.delivery": kind})

    def suspended(self, status: str, wake_at: datetime | None, waiting_for: Sequence[str]) -> None:
        """The run parked: an event on the run span (the attempt ends here)."""
        attributes: dict[str, AttributeValue] = {"durable.run.status": status}
        if wake_at is not None:
            attributes["durable.run.wake_at"] = wake_at.isoformat()
        if waiting_for:
            attributes["durable.run.waiting_for"] = list(waiting_for)
        add_event(EVENT_SUSPENDED, attributes)
        self.instruments.runs_suspended.add(1, {"durable.run.status": status})

    async def refresh_queue_depth(self, count_ready: ReadyCounter, queues: Sequence[str]) -> None:
        """Re-read the queue-depth gauges' values (a worker calls this on its heartbeat)."""
        await self.queue_depth.refresh(count_ready, queues)


class _Active:
    """Makes ``span`` current and ends it on exit. An Exception marks it failed (ERROR status,
    ``error.type``, the exception recorded); a cancellation (a BaseException) adds an event."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def __enter__(self) -> Span:
        if self.span.get_span_context().is_valid:  # the no-op tracer's span changes nothing
            self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and self.span.is_recording():
                if isinstance(exc, Exception):
                    _mark_failed(self.span, exc)
                else:
                    self.span.add_event(EVENT_INTERRUPTED, {ERROR_TYPE: error_type(exc)})
        finally:
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
            self.span.end()


class _Executing(_Active):
    """An execution's span, current while it runs, with the run bound for structlog. A
    class, not a generator: one per run."""

    __slots__ = ("_interrupted", "_logged", "_tokens")

    def __init__(self, span: Span, logged: dict[str, Any], interrupted: Callable[[], bool]) -> None:
        super().__init__(span)
        self._logged = logged
        self._interrupted = interrupted
        self._tokens: Mapping[str, Any] = {}

    def __enter__(self) -> Span:
        self._tokens = bind_contextvars(**self._logged, cursor=...)
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None and self._interrupted():
                self.span.add_event(EVENT_INTERRUPTED)
            super().__exit__(exc_type, exc, tb)
        finally:
            reset_contextvars(**self._tokens)


class _StepAttempt(_Active):
    """One step attempt's span, plus its duration and result in the step metrics."""

    __slots__ = ("_instruments", "_started", "_step", "_workflow")

    def __init__(self, span: Span, instruments: Instruments, workflow: str, step: str) -> None:
        super().__init__(span)
        self._instruments = instruments
        self._workflow = workflow
        self._step = step
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            if exc is None:
                result = "completed"
            else:
                result = "failed" if isinstance(exc, Exception) else "cancelled"
            labels = {WORKFLOW_NAME: self._workflow, STEP_NAME: self._step, STEP_RESULT: result}
            self._instruments.step_duration.record(elapsed, labels)
            self._instruments.step_attempts.add(1, labels)
