"""What tracing costs per step: ``python -m bench.telemetry_overhead [--steps N] [--reps R]``.

Two measurements:

1. End to end: a workflow of N no-op steps run by the real worker on Postgres, with no
   provider (the global no-op one), with an SDK ``TracerProvider`` whose processor exports
   each span at once to an exporter that drops it, and with that plus an SDK ``MeterProvider``.
   Reps alternate between the configurations; the median seconds per step is reported.
2. In process: the telemetry wrapped around one step attempt (span start/end, attributes,
   contextvars, metrics), without the database, so the difference is not lost in noise.

``DURABLE_BENCH_DATABASE_URL`` names a server to use; without it a throwaway embedded
PostgreSQL is started in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from durable import Engine, step, workflow
from durable._foundation.telemetry import Telemetry
from durable._store.embedded import EmbeddedPostgres


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@step(name="overhead.noop")
async def noop(i: int) -> int:
    return i


@workflow(name="overhead.steps")
async def steps(n: int) -> int:
    for i in range(n):
        await noop(i)
    return n


def configurations() -> dict[str, dict[str, Any]]:
    traced = TracerProvider()
    traced.add_span_processor(SimpleSpanProcessor(DropExporter()))
    metered = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {
        "no provider": {},
        "SDK tracing, no-op exporter": {"tracer_provider": traced},
        "SDK tracing + metrics": {"tracer_provider": traced, "meter_provider": metered},
    }


async def end_to_end(url: str, n: int, reps: int) -> dict[str, float]:
    configs = configurations()
    samples: dict[str, list[float]] = {name: [] for name in configs}
    engines = {name: Engine(url, workflows=[steps], **options) for name, options in configs.items()}
    for rep in range(reps + 1):  # rep 0 warms up connections and prepared statements
        for name, engine in engines.items():
            async with engine:
                began = time.perf_counter()
                assert await (await engine.start(steps, n)).result(timeout=600) == n
                if rep:
                    samples[name].append((time.perf_counter() - began) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def in_process(iterations: int) -> dict[str, float]:
    runtime = SimpleNamespace(worker_id="bench:1:abcd")
    ctx: Any = SimpleNamespace(
        workflow="overhead.steps",
        run_id=uuid.uuid4(),
        attempt=1,
        execution=SimpleNamespace(runtime=runtime),
    )
    results = {}
    for name, options in configurations().items():
        telemetry = Telemetry(**options)
        for _ in range(1000):
            with telemetry.step_attempt(ctx, "overhead.noop", "step:overhead.noop#0", 1):
                pass
        began = time.perf_counter()
        for i in range(iterations):
            with telemetry.step_attempt(ctx, "overhead.noop", f"step:overhead.noop#{i}", 1):
                pass
        results[name] = (time.perf_counter() - began) / iterations
    return results


async def main(n: int, reps: int) -> None:
    url = os.environ.get("DURABLE_BENCH_DATABASE_URL")
    embedded = None
    data_dir = None
    if url is None:
        data_dir = Path(tempfile.mkdtemp(prefix="durable-overhead-"))
        embedded = EmbeddedPostgres(delete_on_stop=True)
        url = await embedded.start(data_dir)
    try:
        e2e = await end_to_end(url, n, reps)
    finally:
        if embedded is not None:
            await embedded.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    base = e2e["no provider"]
    print(f"end to end, {n} sequential no-op steps, median of {reps} reps (per step):")
    for name, seconds in e2e.items():
        print(f"  {name:<30} {seconds * 1e6:8.1f} µs   ({(seconds - base) * 1e6:+7.1f} µs)")
    micro = in_process(50_000)
    base = micro["no provider"]
    print("in process, telemetry around one step attempt (no database):")
    for name, seconds in micro.items():
        print(f"  {name:<30} {seconds * 1e6:8.2f} µs   ({(seconds - base) * 1e6:+7.2f} µs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    anyio.run(main, args.steps, args.reps)
