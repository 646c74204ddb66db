"""Signals in traces: a PRODUCER span where a signal is sent, and a link to it from the
execution that consumed it, exported by opentelemetry-sdk's in-memory exporter."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

import durable
from durable import SignalKind, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.test_telemetry import Tracing, attrs, one

pytestmark = pytest.mark.anyio


@workflow(name="sigtr.waiter")
async def waiter() -> Any:
    return await durable.wait_for_signal("approve")


@workflow(name="sigtr.sender")
async def sender() -> Any:
    handle = await waiter.start()
    delivery = await handle.signal("approve", "from a run")
    return [str(delivery.kind), await handle.result()]


@pytest.fixture
def tracing() -> Tracing:
    return Tracing()


def executions(tracing: Tracing, workflow_name: str) -> list[ReadableSpan]:
    spans = tracing.named(f"run_workflow {workflow_name}")
    return sorted(spans, key=lambda s: attrs(s)["durable.run.attempt"])


def received(span: ReadableSpan) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == "durable.signal.received"]


async def test_a_signal_span_is_linked_from_the_execution_it_resumed(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(waiter, tracer_provider=tracing.provider) as engine:
        handle = await engine.start(waiter)
        await support.wait_for_status(handle, "waiting")
        with tracing.tracer.start_as_current_span("POST /webhook") as webhook:
            delivery = await engine.signal(handle.run_id, "approve", {"ok": True})
        assert delivery.kind == SignalKind.DELIVERED
        assert await handle.result(timeout=10) == {"ok": True}
        await tracing.wait_for(lambda spans: len(executions(tracing, "sigtr.waiter")) == 2)

    sent = one(tracing.named("send_signal approve"))
    assert sent.kind == SpanKind.PRODUCER
    assert sent.parent is not None
    assert sent.parent.span_id == webhook.get_span_context().span_id
    assert sent.context.trace_id == webhook.get_span_context().trace_id
    assert attrs(sent) == {
        "durable.signal.name": "approve",
        "durable.run.id": str(handle.run_id),
        "durable.signal.delivery": "delivered",
    }
    first, resumed = executions(tracing, "sigtr.waiter")
    assert not first.links
    assert not received(first)
    link = one(list(resumed.links))
    assert link.context.trace_id == sent.context.trace_id
    assert link.context.span_id == sent.context.span_id
    assert dict(link.attributes or {}) == {
        "durable.signal.name": "approve",
        "durable.step.cursor": "signal:approve#0",
    }
    assert received(resumed) == [dict(link.attributes or {})]


async def test_a_signal_by_business_key_is_traced_and_linked(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(waiter, tracer_provider=tracing.provider) as engine:
        handle = await engine.start(waiter, idempotency_key="order-7")
        await support.wait_for_status(handle, "waiting")
        delivery = await engine.signal(
            workflow="sigtr.waiter", idempotency_key="order-7", name="approve", payload=7
        )
        assert delivery.kind == SignalKind.DELIVERED
        missing = await engine.signal(
            workflow="sigtr.waiter", idempotency_key="order-8", name="approve", payload=8
        )
        assert missing.kind == SignalKind.RUN_NOT_FOUND
        assert await handle.result(timeout=10) == 7
        await tracing.wait_for(lambda spans: len(executions(tracing, "sigtr.waiter")) == 2)

    sent, lost = sorted(
        tracing.named("send_signal approve"),
        key=lambda s: attrs(s)["durable.signal.delivery"],
    )
    assert attrs(sent)["durable.workflow.name"] == "sigtr.waiter"
    assert attrs(sent)["durable.run.id"] == str(handle.run_id)
    assert attrs(lost)["durable.signal.delivery"] == "run_not_found"
    assert "durable.run.id" not in attrs(lost)
    resumed = executions(tracing, "sigtr.waiter")[-1]
    assert one(list(resumed.links)).context.span_id == sent.context.span_id


async def test_a_buffered_signal_is_linked_from_the_execution_that_consumes_it(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(waiter, tracer_provider=tracing.provider, worker=False) as client:
        handle = await client.start(waiter)
        delivery = await client.signal(handle.run_id, "approve", "early")
        assert delivery.kind == SignalKind.BUFFERED
    async with make_engine(waiter, tracer_provider=tracing.provider) as engine:
        assert await engine.handle(handle.run_id).result(timeout=10) == "early"
        await tracing.wait_for(lambda spans: len(executions(tracing, "sigtr.waiter")) == 1)

    sent = one(tracing.named("send_signal approve"))
    only = one(executions(tracing, "sigtr.waiter"))
    assert one(list(only.links)).context.span_id == sent.context.span_id


async def test_a_signal_sent_by_a_run_is_traced_from_that_run(
    make_engine: EngineFactory, tracing: Tracing
) -> None:
    async with make_engine(waiter, sender, tracer_provider=tracing.provider) as engine:
        handle = await engine.start(sender)
        kind, result = await handle.result(timeout=10)
        assert kind in ("delivered", "buffered")  # whether the child waits yet or not
        assert result == "from a run"
        await tracing.wait_for(lambda spans: bool(tracing.named("run_workflow sigtr.sender")))

    sent = one(tracing.named("send_signal approve"))
    assert sent.kind == SpanKind.PRODUCER
    senders = {s.context.span_id for s in tracing.named("run_workflow sigtr.sender")}
    assert sent.parent is not None
    assert sent.parent.span_id in senders
    consumers = [s for s in executions(tracing, "sigtr.waiter") if s.links]
    assert one(list(one(consumers).links)).context.span_id == sent.context.span_id
