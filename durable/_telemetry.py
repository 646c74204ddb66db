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
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from structlog.contextvars import bind_contextvars, reset_contextvars

if TYPE_CHECKING:
    from durable._context import RunContext
    from durable._execution import Execution
    from durable._store import Store

__all__ = [
    "EVENT_CHILD_START",
    "EVENT_INTERRUPTED",
    "EVENT_SIGNAL_WAIT",
    "EVENT_SLEEP",
    "EVENT_SUSPENDED",
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

INSTRUMENTATION_NAME = "durable"

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
QUEUE_NAME = "durable.queue.name"
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

# Seconds; steps are short, runs may sleep for days.
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800)

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


class QueueDepth:
    """Ready-but-unclaimed runs per queue, cached for the observable gauges.

    Gauge callbacks run on the metric reader's thread and must not touch the database, so
    they report this cache; a worker refreshes it on its heartbeat, and only once a reader
    has observed the gauge (no reader, no query).
    """

    def __init__(self) -> None:
        self.observed = False
        self.values: dict[str, tuple[int, float]] = {}
        """queue -> (ready runs, seconds the oldest of them has been due)."""

    async def refresh(self, store: Store, queues: Sequence[str]) -> None:
        if not self.observed:
            return
        try:
            rows = await store.count_ready_runs(queues)
        except Exception as exc:  # a metric must never break the worker
            _log.debug("could not count ready runs: %s", exc)
            return
        values = dict.fromkeys(queues, (0, 0.0))
        for row in rows:
            values[row["queue"]] = (row["ready"], max(0.0, row["lag"] or 0.0))
        self.values = values


class _Instruments:
    """The instruments of one meter, shared by every engine that uses that meter (an SDK
    returns the first registration of a name, so a second engine's gauge callbacks would
    otherwise be dropped)."""

    def __init__(self, meter: Meter) -> None:
        self.run_duration = meter.create_histogram(
            "durable.run.duration",
            unit="s",
            description="From a run's first execution to its end, sleeps and retries included.",
            explicit_bucket_boundaries_advisory=_RUN_BUCKETS,
        )
        self.step_duration = meter.create_histogram(
            "durable.step.duration",
            unit="s",
            description="Duration of one executed step attempt (replayed steps are not counted).",
            explicit_bucket_boundaries_advisory=_STEP_BUCKETS,
        )
        self.runs_finished = meter.create_counter(
            "durable.runs.finished",
            unit="{run}",
            description="Runs that reached a final status, by workflow and result.",
        )
        self.step_attempts = meter.create_counter(
            "durable.step.attempts",
            unit="{attempt}",
            description="Executed step attempts, by workflow, step and result.",
        )
        self._sources: weakref.WeakSet[QueueDepth] = weakref.WeakSet()
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            "durable.queue.ready",
            callbacks=[self._observe_ready],
            unit="{run}",
            description="Runs that are due but not yet claimed by a worker, per queue.",
        )
        meter.create_observable_gauge(
            "durable.queue.lag",
            callbacks=[self._observe_lag],
            unit="s",
            description="How long the oldest due-but-unclaimed run of a queue has waited.",
        )

    def add_source(self, source: QueueDepth) -> None:
        with self._lock:
            self._sources.add(source)

    def _snapshot(self) -> list[dict[str, tuple[int, float]]]:
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            source.observed = True
        return [source.values for source in sources]

    def _observe_ready(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(ready, {QUEUE_NAME: queue})
            for values in self._snapshot()
            for queue, (ready, _) in values.items()
        ]

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(lag, {QUEUE_NAME: queue})
            for values in self._snapshot()
            for queue, (_, lag) in values.items()
        ]


_by_provider: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()
_global: list[_Instruments] = []
_instruments_lock = threading.Lock()


def _instruments(meter_provider: MeterProvider | None) -> _Instruments:
    version = _version()
    with _instruments_lock:
        if meter_provider is None:
            if not _global:  # one proxy meter: it follows a global provider set later
                _global.append(_Instruments(metrics.get_meter(INSTRUMENTATION_NAME, version)))
            return _global[0]
        found = _by_provider.get(meter_provider)
        if found is None:
            found = _Instruments(meter_provider.get_meter(INSTRUMENTATION_NAME, version))
            _by_provider[meter_provider] = found
        return found


def _version() -> str:
    from durable import __version__

    return __version__


# -- the engine's telemetry -----------------------------------------------------------------


@dataclass(slots=True)
class StartedRun:
    """What ``Telemetry.start_workflow`` yields: the context to store on the run."""

    span: Span
    traceparent: str | None
    tracestate: str | None

    def stored(self, run_id: UUID, created: bool) -> None:
        """Note which run the start resolved to (an idempotency key may return an old one)."""
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
        version = _version()
        self.tracer: Tracer = (
            tracer_provider.get_tracer(INSTRUMENTATION_NAME, version)
            if tracer_provider is not None
            else trace.get_tracer(INSTRUMENTATION_NAME, version)
        )
        self.instruments = _instruments(meter_provider)
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
            yield StartedRun(span, parent, state)

    @contextmanager
    def executing(self, execution: Execution) -> Iterator[Span]:
        """The CONSUMER span of one execution attempt, and the run's structlog context."""
        row = execution.row
        name = execution.workflow.name
        span = self.tracer.start_span(
            f"run_workflow {name}",
            context=extract_context(row["traceparent"], row["tracestate"]),
            kind=SpanKind.CONSUMER,
            attributes={
                WORKFLOW_NAME: name,
                WORKFLOW_VERSION: execution.workflow.version,
                RUN_ID: str(execution.run_id),
                RUN_ATTEMPT: execution.attempt,
                QUEUE_NAME: row["queue"],
                WORKER_ID: execution.runtime.worker_id,
            },
        )
        tokens = bind_contextvars(
            run_id=str(execution.run_id),
            workflow=name,
            run_attempt=execution.attempt,
            cursor=...,
        )
        try:
            with _Active(span):
                yield span
                if execution.scope.cancelled_caught:
                    span.add_event(EVENT_INTERRUPTED)
        finally:
            reset_contextvars(**tokens)

    def step_attempt(self, ctx: RunContext, name: str, key: str, attempt: int) -> _StepAttempt:
        """The INTERNAL span of one executed step attempt, its metrics and ``cursor``.

        A class, not a generator: this runs once per executed step, so it stays cheap.
        """
        span = self.tracer.start_span(
            f"step {name}",
            kind=SpanKind.INTERNAL,
            attributes={
                WORKFLOW_NAME: ctx.workflow,
                RUN_ID: str(ctx.run_id),
                RUN_ATTEMPT: ctx.attempt,
                STEP_NAME: name,
                STEP_CURSOR: key,
                STEP_ATTEMPT: attempt,
                WORKER_ID: ctx.execution.runtime.worker_id,
            },
        )
        bind_cursor(key)  # gathered branches each log their own step's cursor
        return _StepAttempt(span, self.instruments, ctx.workflow, name)

    # -- run outcomes ---------------------------------------------------------------------

    def run_finished(self, execution: Execution, status: str) -> None:
        """A run reached a final status: count it, time it, and tag the current span."""
        labels = {WORKFLOW_NAME: execution.workflow.name, RUN_RESULT: status}
        self.instruments.runs_finished.add(1, labels)
        started_at = execution.row.get("started_at")
        if started_at is not None:
            elapsed = max(0.0, execution.clock() - started_at.timestamp())
            self.instruments.run_duration.record(elapsed, labels)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(RUN_RESULT, status)

    def suspended(self, status: str, wake_at: datetime | None, waiting_for: Sequence[str]) -> None:
        """The run parked: an event on the run span (the attempt ends here)."""
        attributes: dict[str, AttributeValue] = {"durable.run.status": status}
        if wake_at is not None:
            attributes["durable.run.wake_at"] = wake_at.isoformat()
        if waiting_for:
            attributes["durable.run.waiting_for"] = list(waiting_for)
        add_event(EVENT_SUSPENDED, attributes)

    async def refresh_queue_depth(self, store: Store, queues: Sequence[str]) -> None:
        """Re-read the queue-depth gauges' values (a worker calls this on its heartbeat)."""
        await self.queue_depth.refresh(store, queues)


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


class _StepAttempt(_Active):
    """One step attempt's span, plus its duration and result in the step metrics."""

    __slots__ = ("_instruments", "_started", "_step", "_workflow")

    def __init__(self, span: Span, instruments: _Instruments, workflow: str, step: str) -> None:
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
