"""Metrics of real runs, read with opentelemetry-sdk's ``InMemoryMetricReader``."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric

from durable import WorkflowFailed, step, workflow
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

FLAKY_FAILURES: list[int] = []


@step(name="met.ok")
async def ok(value: int) -> int:
    return value + 1


@step(name="met.flaky", retries=2, initial_interval=0.001, max_interval=0.001)
async def flaky() -> str:
    FLAKY_FAILURES.append(1)
    if len(FLAKY_FAILURES) == 1:
        raise ConnectionError("once")
    return "ok"


@step(name="met.broken")
async def broken() -> None:
    raise ValueError("nope")


@workflow(name="met.flow", queue="met")
async def flow(value: int) -> str:
    await ok(value)
    return await flaky()


@workflow(name="met.failing", queue="met")
async def failing() -> None:
    await broken()


@workflow(name="met.unserved", queue="met")
async def unserved() -> None:
    """Started but never claimed: no engine in this module serves it."""


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, point) of every data point of metric ``name``."""
    data = reader.get_metrics_data()
    found: list[tuple[dict[str, Any], Any]] = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            metrics: list[Metric] = [m for m in scope.metrics if m.name == name]
            for metric in metrics:
                found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
    return found


def unit(reader: InMemoryMetricReader, name: str) -> str | None:
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    assert scope.scope.name == "durable"
                    return metric.unit
    return None


@pytest.fixture
def reader() -> InMemoryMetricReader:
    FLAKY_FAILURES.clear()
    return InMemoryMetricReader()


async def test_run_and_step_metrics(
    make_engine: EngineFactory, reader: InMemoryMetricReader
) -> None:
    provider = MeterProvider(metric_readers=[reader])
    async with make_engine(flow, failing, meter_provider=provider, queues=["met"]) as engine:
        assert await (await engine.start(flow, 1)).result(timeout=10) == "ok"
        with pytest.raises(WorkflowFailed):
            await (await engine.start(failing)).result(timeout=10)
        await anyio.sleep(0.1)  # the finish is counted just after it is stored

    assert unit(reader, "durable.run.duration") == "s"
    assert unit(reader, "durable.step.duration") == "s"
    finished = {
        (a["durable.workflow.name"], a["durable.run.result"]): p.value
        for a, p in points(reader, "durable.runs.finished")
    }
    assert finished == {("met.flow", "completed"): 1, ("met.failing", "failed"): 1}
    durations = {
        (a["durable.workflow.name"], a["durable.run.result"]): p.count
        for a, p in points(reader, "durable.run.duration")
    }
    assert durations == {("met.flow", "completed"): 1, ("met.failing", "failed"): 1}

    attempts = {
        (a["durable.step.name"], a["durable.step.result"]): p.value
        for a, p in points(reader, "durable.step.attempts")
    }
    assert attempts == {
        ("met.ok", "completed"): 1,
        ("met.flaky", "failed"): 1,
        ("met.flaky", "completed"): 1,
        ("met.broken", "failed"): 1,
    }
    step_durations = {
        (a["durable.step.name"], a["durable.step.result"]): p
        for a, p in points(reader, "durable.step.duration")
    }
    assert step_durations.keys() == attempts.keys()
    assert all(p.count == 1 and 0 <= p.sum < 5 for p in step_durations.values())


async def test_queue_depth_gauges_report_ready_unclaimed_runs(
    make_engine: EngineFactory, reader: InMemoryMetricReader
) -> None:
    provider = MeterProvider(metric_readers=[reader])
    options = {"meter_provider": provider, "heartbeat_seconds": 0.05, "queues": ["met"]}
    async with make_engine(flow, **options) as engine:
        # Before any reader observed the gauges, the worker never counts.
        assert engine.telemetry.queue_depth.observed is False
        for _ in range(3):
            await engine.start(unserved)
        assert await (await engine.start(flow, 2)).result(timeout=10) == "ok"
        assert points(reader, "durable.queue.ready") == []  # first read: nothing cached yet
        deadline = time.monotonic() + 5
        while not points(reader, "durable.queue.ready"):
            assert time.monotonic() < deadline, "the worker never refreshed the queue depth"
            await anyio.sleep(0.02)
        await anyio.sleep(0.1)  # a little lag

        ready = {a["durable.queue.name"]: p.value for a, p in points(reader, "durable.queue.ready")}
        lag = {a["durable.queue.name"]: p.value for a, p in points(reader, "durable.queue.lag")}
    assert ready == {"met": 3}
    assert lag["met"] > 0


async def test_two_engines_on_one_meter_provider_both_report(
    make_engine: EngineFactory, reader: InMemoryMetricReader
) -> None:
    """An SDK keeps the first registration of an instrument name: the second engine's
    gauge must still be fed (instruments are shared per provider)."""
    provider = MeterProvider(metric_readers=[reader])
    first = make_engine(flow, meter_provider=provider)
    second = make_engine(flow, meter_provider=provider)
    assert first.telemetry.instruments is second.telemetry.instruments
    points(reader, "durable.queue.ready")
    assert first.telemetry.queue_depth.observed
    assert second.telemetry.queue_depth.observed
