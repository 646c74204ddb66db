"""Tracing: one trace from the request that starts a run to every step, across a durable sleep.

Run it with `uv run python examples/tracing.py` (the OpenTelemetry SDK comes with the dev
dependencies, or `pip install 'durable-sdk[otel]'`). With no DURABLE_DATABASE_URL or
DATABASE_URL set, the engine starts a local PostgreSQL in ./.durable.

The engine gets its own TracerProvider; durable itself only uses the OpenTelemetry API and
never installs a provider. The sleep is longer than `inline_wait_seconds`, so the run parks,
leaves the worker and is claimed again two seconds later: a second `run_workflow` span, in
the same trace, with no new span for the step that was already recorded.
"""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import durable
from durable import Engine, step, workflow


def one_line(span: ReadableSpan) -> str:
    """A compact console line per span: trace, span, parent, kind and durable attributes."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = f"{span.parent.span_id:016x}" if span.parent else "-" * 16
    attributes = span.attributes or {}
    details = " ".join(
        f"{key.removeprefix('durable.')}={value!s}"
        for key, value in attributes.items()
        if key in ("durable.run.attempt", "durable.step.cursor", "durable.step.attempt")
    )
    events = ",".join(event.name for event in span.events)
    return (
        f"trace={ctx.trace_id:032x} span={ctx.span_id:016x} parent={parent} "
        f"{span.kind.name:<8} {span.name:<32} {details} {events}\n"
    )


@step
async def reserve_stock(order_id: str) -> str:
    durable.logger.info("reserving stock", order_id=order_id)
    return f"reservation-{order_id}"


@step(retries=2, initial_interval=0.1)
async def charge_card(order_id: str) -> str:
    return f"receipt-{order_id}"


@workflow(name="tracing-demo.checkout")
async def checkout(order_id: str) -> dict[str, str]:
    reservation = await reserve_stock(order_id)
    await durable.sleep("2s")  # parks the run: the worker is free until the timer fires
    receipt = await charge_card(order_id)
    return {"reservation": reservation, "receipt": receipt}


async def main() -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "tracing-demo"}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    tracer = provider.get_tracer("tracing-demo")

    async with Engine(
        tracer_provider=provider, workflows=[checkout], inline_wait_seconds=0.5
    ) as engine:
        # Stands in for the HTTP request (or any span) that starts the run.
        with tracer.start_as_current_span("POST /orders"):
            handle = await engine.start(checkout, "order-7")
        result = await handle.result(timeout=30)
        await asyncio.sleep(0.1)  # the run span ends just after the result is stored
        print("result:", result)
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
