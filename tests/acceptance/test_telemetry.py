"""Spans of real runs, exported by opentelemetry-sdk's in-memory exporter.

The engine gets its own ``TracerProvider``; nothing here touches the global provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import durable
from durable import RunHandle, WorkflowFailed, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@step(name="tel.reserve")
async def reserve(order: str) -> str:
    return f"reserved {order}"


@step(name="tel.charge")
async def charge(order: str) -> str:
    return f"charged {order}"


@workflow(name="tel.checkout", version=3, queue="tel")
async def checkout(order: str) -> list[str]:
    return [await reserve(order), await charge(order)]


@step(name="tel.explode")
async def explode() -> None:
    raise ValueError("card declined")


@workflow(name="tel.failing")
async def failing() -> None:
    await explode()


@workflow(name="tel.resumed")
async def resumed(order: str) -> str:
    await reserve(order)
    return await support.park_once()


@workflow(name="tel.child")
async def child(order: str) -> str:
    return await charge(order)


@workflow(name="tel.parent")
async def parent(order: str) -> str:
    await reserve(order)
    return await child(order)


@workflow(name="tel.napper")
async def napper() -> str:
    await durable.sleep(0.3)
    return await charge("late")


WORKFLOWS = [checkout, failing, resumed, child, parent, napper]


class Tracing:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    async def wait_for(
        self, predicate: Callable[[Sequence[ReadableSpan]], bool], timeout: float = 5.0
    ) -> tuple[ReadableSpan, ...]:
        """Run spans end just after the run is stored as finished: wait for them."""
        deadline = time.monotonic() + timeout
        while not predicate(self.spans()):
            if time.monotonic() > deadline:
                names = [s.name for s in self.spans()]
                raise AssertionError(f"spans never matched; finished: {names}")
            await anyio.sleep(0.01)
        return self.spans()


def count(name: str, n: int) -> Callable[[Sequence[ReadableSpan]], bool]:
    return lambda spans: sum(s.name == name for s in spans) >= n


def one(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.fixture
def tracing() -> Tracing:
    return Tracing()


async def test_spans_have_names_kinds_parents_and_attributes(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(*WORKFLOWS, tracer_provider=tracing.provider) as engine:
        with tracing.tracer.start_as_current_span("POST /orders") as request:
            handle = await engine.start(checkout, "o-1")
        assert await handle.result(timeout=10) == ["reserved o-1", "charged o-1"]
        await tracing.wait_for(count("run_workflow tel.checkout", 1))
        worker_id = engine.runtime.worker_id

    run_id = str(handle.run_id)
    start = one(tracing.named("start_workflow tel.checkout"))
    run = one(tracing.named("run_workflow tel.checkout"))
    steps = [one(tracing.named("step tel.reserve")), one(tracing.named("step tel.charge"))]

    assert (start.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert all(s.kind == SpanKind.INTERNAL for s in steps)
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in [start, run, *steps]} == {trace_id}
    assert start.parent is not None
    assert start.parent.span_id == request.get_span_context().span_id
    assert run.parent is not None
    assert run.parent.span_id == start.context.span_id
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in steps)
    assert all(run_id not in s.name for s in tracing.spans())

    assert attrs(start) == {
        "durable.workflow.name": "tel.checkout",
        "durable.workflow.version": 3,
        "durable.queue.name": "tel",
        "durable.run.id": run_id,
        "durable.run.created": True,
    }
    assert attrs(run) == {
        "durable.workflow.name": "tel.checkout",
        "durable.workflow.version": 3,
        "durable.run.id": run_id,
        "durable.run.attempt": 1,
        "durable.queue.name": "tel",
        "durable.worker.id": worker_id,
        "durable.run.result": "completed",
    }
    assert attrs(steps[1]) == {
        "durable.workflow.name": "tel.checkout",
        "durable.run.id": run_id,
        "durable.run.attempt": 1,
        "durable.step.name": "tel.charge",
        "durable.step.cursor": "step:tel.charge#0",
        "durable.step.attempt": 1,
        "durable.worker.id": worker_id,
    }
    assert all(s.status.status_code == StatusCode.UNSET for s in [start, run, *steps])


async def test_failure_sets_error_status_type_and_exception(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(*WORKFLOWS, tracer_provider=tracing.provider) as engine:
        handle = await engine.start(failing)
        with pytest.raises(WorkflowFailed):
            await handle.result(timeout=10)
        await tracing.wait_for(count("run_workflow tel.failing", 1))

    for span in [
        one(tracing.named("step tel.explode")),
        one(tracing.named("run_workflow tel.failing")),
    ]:
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == "ValueError: card declined"
        assert attrs(span)["error.type"] == "ValueError"
        exception = [e for e in span.events if e.name == "exception"]
        assert len(exception) == 1
        assert dict(exception[0].attributes or {})["exception.message"] == "card declined"
    run = one(tracing.named("run_workflow tel.failing"))
    assert attrs(run)["durable.run.result"] == "failed"


async def test_resumed_run_continues_the_trace_without_spans_for_replayed_steps(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(*WORKFLOWS, tracer_provider=tracing.provider) as engine:
        with tracing.tracer.start_as_current_span("request") as request:
            handle = await engine.start(resumed, "o-2")
        assert await handle.result(timeout=10) == "resumed"
        await tracing.wait_for(count("run_workflow tel.resumed", 2))

    runs = sorted(tracing.named("run_workflow tel.resumed"), key=lambda s: s.start_time or 0)
    start = one(tracing.named("start_workflow tel.resumed"))
    assert [attrs(r)["durable.run.attempt"] for r in runs] == [1, 2]
    # Both attempts are children of the one start span, in the caller's trace.
    trace_id = request.get_span_context().trace_id
    assert all(r.parent is not None and r.parent.span_id == start.context.span_id for r in runs)
    assert {r.context.trace_id for r in runs} == {trace_id}
    # The first attempt parked: a suspension event, and no result.
    suspended = [e for e in runs[0].events if e.name == "durable.run.suspended"]
    assert len(suspended) == 1
    assert dict(suspended[0].attributes or {})["durable.run.status"] == "sleeping"
    assert "durable.run.result" not in attrs(runs[0])
    assert attrs(runs[1])["durable.run.result"] == "completed"
    # tel.reserve ran once and was replayed by attempt 2: one span only.
    reserve_span = one(tracing.named("step tel.reserve"))
    assert reserve_span.parent is not None
    assert reserve_span.parent.span_id == runs[0].context.span_id
    # park_once: a failed attempt under run attempt 1, the retry under run attempt 2.
    parked = sorted(tracing.named("step park_once"), key=lambda s: s.start_time or 0)
    assert [attrs(s)["durable.step.attempt"] for s in parked] == [1, 2]
    assert [s.status.status_code for s in parked] == [StatusCode.ERROR, StatusCode.UNSET]
    assert [s.parent.span_id for s in parked if s.parent] == [r.context.span_id for r in runs]


async def test_sleep_is_one_trace_with_a_suspension_event(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(*WORKFLOWS, tracer_provider=tracing.provider) as engine:
        with tracing.tracer.start_as_current_span("request") as request:
            handle = await engine.start(napper)
        assert await handle.result(timeout=10) == "charged late"
        await tracing.wait_for(count("run_workflow tel.napper", 2))

    runs = sorted(tracing.named("run_workflow tel.napper"), key=lambda s: s.start_time or 0)
    assert {s.context.trace_id for s in tracing.spans() if s.name != "request"} == {
        request.get_span_context().trace_id
    }
    assert [e.name for e in runs[0].events] == ["durable.sleep", "durable.run.suspended"]
    assert [e.name for e in runs[1].events] == []  # the replayed sleep adds no event
    assert one(tracing.named("step tel.charge")).parent.span_id == runs[1].context.span_id  # type: ignore[union-attr]


async def test_child_run_spans_are_in_the_parent_trace(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(*WORKFLOWS, tracer_provider=tracing.provider) as engine:
        with tracing.tracer.start_as_current_span("request") as request:
            handle = await engine.start(parent, "o-3")
        assert await handle.result(timeout=10) == "charged o-3"
        await tracing.wait_for(count("run_workflow tel.parent", 2))

    trace_id = request.get_span_context().trace_id
    child_runs = tracing.named("run_workflow tel.child")
    assert child_runs
    assert {s.context.trace_id for s in child_runs} == {trace_id}
    assert one(tracing.named("step tel.charge")).context.trace_id == trace_id


async def test_idempotent_start_names_the_existing_run(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(*WORKFLOWS, tracer_provider=tracing.provider, worker=False) as engine:
        first = await engine.start(checkout, "o-4", idempotency_key="k")
        again: RunHandle[Any] = await engine.start(checkout, "o-4", idempotency_key="k")

    assert again.run_id == first.run_id
    starts = tracing.named("start_workflow tel.checkout")
    assert [attrs(s)["durable.run.created"] for s in starts] == [True, False]
    assert {attrs(s)["durable.run.id"] for s in starts} == {str(first.run_id)}


async def test_no_provider_means_no_stored_context(
    make_engine: EngineFactory, database_url: str
) -> None:
    """Without a provider (the global no-op one) nothing is traced or stored."""
    async with make_engine(*WORKFLOWS) as engine:
        handle = await engine.start(checkout, "o-5")
        assert await handle.result(timeout=10) == ["reserved o-5", "charged o-5"]
        row = await support.fetch_row(
            database_url,
            "SELECT traceparent, tracestate FROM durable.runs WHERE id = $1",
            handle.run_id,
        )
    assert row is not None
    assert (row["traceparent"], row["tracestate"]) == (None, None)
