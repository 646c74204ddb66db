"""Trace-context storage and the small helpers of the telemetry module (no database)."""

from __future__ import annotations

import uuid

from opentelemetry import baggage, context, metrics, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from durable import Engine
from durable._foundation.telemetry import (
    Telemetry,
    add_event,
    current_traceparent,
    error_type,
    extract_context,
)
from durable.errors import StepTimeout


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_nothing_is_stored_without_a_current_span() -> None:
    assert current_traceparent() == (None, None)


def test_traceparent_and_tracestate_round_trip_without_baggage() -> None:
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "x1")]),
    )
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    ctx = baggage.set_baggage("user", "secret", ctx)
    token = context.attach(ctx)
    try:
        traceparent, tracestate = current_traceparent()
    finally:
        context.detach(token)
    assert traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert tracestate == "vendor=x1"

    restored = extract_context(traceparent, tracestate)
    span_context = trace.get_current_span(restored).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (parent.trace_id, parent.span_id)
    assert span_context.is_remote
    assert span_context.trace_state.get("vendor") == "x1"
    assert baggage.get_all(restored) == {}


def test_no_stored_context_means_a_new_root() -> None:
    provider, exporter = _provider()
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("unrelated current span"):
        span = tracer.start_span("run", context=extract_context(None, None))
        span.end()
    assert exporter.get_finished_spans()[0].parent is None


def test_schedule_starts_are_roots() -> None:
    provider, exporter = _provider()
    telemetry = Telemetry(provider)
    tracer = provider.get_tracer("tests")
    with (
        tracer.start_as_current_span("engine startup"),
        telemetry.start_workflow("nightly", 1, "default", uuid.uuid4(), root=True) as started,
    ):
        assert started.traceparent is not None
    start = next(s for s in exporter.get_finished_spans() if s.name == "start_workflow nightly")
    assert start.parent is None


def test_start_span_records_a_failure_and_reraises() -> None:
    provider, exporter = _provider()
    telemetry = Telemetry(provider)
    try:
        with telemetry.start_workflow("wf", 1, "default", uuid.uuid4()):
            raise TypeError("bad argument")
    except TypeError:
        pass
    [span] = exporter.get_finished_spans()
    assert span.status.is_ok is False
    assert dict(span.attributes or {})["error.type"] == "TypeError"


def test_error_type_is_the_qualified_class_name() -> None:
    assert error_type(ValueError("x")) == "ValueError"
    assert error_type(StepTimeout("x")) == "durable.errors.StepTimeout"


def test_add_event_without_a_recording_span_is_a_no_op() -> None:
    add_event("durable.sleep", {"durable.sleep.seconds": 1.0})


def test_engine_never_installs_global_providers() -> None:
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    provider, _ = _provider()
    Engine("postgresql://unused", tracer_provider=provider, worker=False)
    Engine("postgresql://unused", worker=False)
    assert trace.get_tracer_provider() is tracer_provider
    assert metrics.get_meter_provider() is meter_provider


def test_a_sampled_out_start_still_stores_its_context() -> None:
    """The sampling decision travels with the run: its attempts are not sampled either."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    telemetry = Telemetry(provider)
    with telemetry.start_workflow("wf", 1, "default", uuid.uuid4()) as started:
        assert not started.span.is_recording()
    assert started.traceparent is not None
    assert int(started.traceparent.rsplit("-", 1)[1], 16) & 1 == 0  # not sampled
    parent = extract_context(started.traceparent, started.tracestate)
    assert not provider.get_tracer("tests").start_span("run", context=parent).is_recording()
