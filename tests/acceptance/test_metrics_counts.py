"""The counters of issue 11: runs started, runs suspended by status, signals by delivery
kind, and cancelled runs in ``durable.runs.finished``."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import durable
from durable import workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.test_telemetry_metrics import points

pytestmark = pytest.mark.anyio


@workflow(name="counts.child")
async def child() -> str:
    return "child"


@workflow(name="counts.waits")
async def waits() -> str:
    await child()
    return await durable.wait_for_signal("go")


def _sums(reader: InMemoryMetricReader, name: str, label: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for attributes, point in points(reader, name):
        key = str(attributes.get(label))
        totals[key] = totals.get(key, 0) + point.value
    return totals


async def test_started_suspended_signals_and_cancelled_runs_are_counted(
    make_engine: EngineFactory,
) -> None:
    reader = InMemoryMetricReader()
    async with make_engine(waits, child, meter_provider=MeterProvider([reader])) as engine:
        first = await engine.start(waits)
        second = await engine.start(waits)
        await support.wait_for_status(first, "waiting")
        await support.wait_for_status(second, "waiting")
        sent = [
            await first.signal("go", "now"),  # delivered, or buffered if the child is running
            await first.signal("nope", 1, idempotency_key="k"),
            await first.signal("nope", 1, idempotency_key="k"),
        ]
        kinds = [str(d.kind) for d in sent]
        assert kinds[1:] == ["buffered", "duplicate"]
        assert await first.result(timeout=10) == "now"
        assert await second.cancel() is True

    started = _sums(reader, "durable.runs.started", "durable.workflow.name")
    assert started == {"counts.waits": 2, "counts.child": 2}
    suspended = _sums(reader, "durable.runs.suspended", "durable.run.status")
    assert suspended["waiting"] >= 2  # each parent parked at least once
    signals = _sums(reader, "durable.signals", "durable.signal.delivery")
    assert signals == {kind: kinds.count(kind) for kind in kinds}
    finished = _sums(reader, "durable.runs.finished", "durable.run.result")
    assert finished["cancelled"] == 1
    assert finished["completed"] == 3  # both children and the signalled parent
