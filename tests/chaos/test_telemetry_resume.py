"""A run resumed by another process after its worker was SIGKILLed stays in the caller's trace.

The first worker is a subprocess (``python -m tests.chaos.test_telemetry_resume``) with its own
SDK ``TracerProvider`` that writes every finished span to a file as a JSON line. It records the
first step, hangs in the second and is killed. The test process then resumes the run with its
own worker: its run span must continue the trace stored by the caller's ``start()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable import Engine, step, workflow

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

REPO_ROOT = Path(__file__).resolve().parents[2]
SPANS_ENV = "DURABLE_TELEMETRY_SPANS"
HANG_ENV = "DURABLE_TELEMETRY_HANG"
MARKS_ENV = "DURABLE_TELEMETRY_MARKS"
LEASE_SECONDS = 1.0


def _mark(event: str) -> None:
    path = os.environ.get(MARKS_ENV)
    if path:
        with open(path, "a") as out:
            out.write(f"{event}\n")


@step(name="telx.prepare")
async def prepare(order: str) -> str:
    _mark("prepare")
    return f"prepared {order}"


@step(name="telx.charge")
async def charge(order: str) -> str:
    if os.environ.get(HANG_ENV):
        _mark("charge:hang")
        await anyio.sleep(3600)
    return f"charged {order}"


@workflow(name="telx.checkout")
async def checkout(order: str) -> list[str]:
    return [await prepare(order), await charge(order)]


class JsonLinesExporter(SpanExporter):
    """Appends one JSON line per finished span (SimpleSpanProcessor: at once, so a killed
    process has already written every span that ended)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path.open("a") as out:
            for span in spans:
                out.write(json.dumps(_summary(span)) + "\n")
        return SpanExportResult.SUCCESS


def _summary(span: ReadableSpan) -> dict[str, Any]:
    assert span.context is not None
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": dict(span.attributes or {}),
    }


async def _serve(database_url: str) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(Path(os.environ[SPANS_ENV]))))
    async with Engine(
        database_url,
        workflows=[checkout],
        tracer_provider=provider,
        lease_seconds=LEASE_SECONDS,
        heartbeat_seconds=0.2,
        poll_interval=0.1,
        shutdown_grace_seconds=0,
    ):
        await anyio.sleep_forever()


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        SPANS_ENV: str(tmp_path / "spans.jsonl"),
        MARKS_ENV: str(tmp_path / "marks.txt"),
        HANG_ENV: "1",
        "PYTHONUNBUFFERED": "1",
    }


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _spawn(database_url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.test_telemetry_resume", database_url],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


async def _wait_for_mark(path: Path, mark: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while mark not in _lines(path):
        assert proc.poll() is None, "the worker exited early:\n" + "\n".join(_lines(log))
        assert time.monotonic() < deadline, f"the worker never reached {mark!r}"
        await anyio.sleep(0.05)


async def test_resume_in_another_process_continues_the_callers_trace(
    database_url: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    caller = provider.get_tracer("tests")

    async with Engine(
        database_url, workflows=[checkout], worker=False, tracer_provider=provider
    ) as client:
        with caller.start_as_current_span("POST /checkout") as request:
            handle = await client.start(checkout, "o-9")
    trace_id = f"{request.get_span_context().trace_id:032x}"

    log = tmp_path / "worker.log"
    proc = _spawn(database_url, worker_env, log)
    try:
        await _wait_for_mark(Path(worker_env[MARKS_ENV]), "charge:hang", proc, log)
    finally:
        _kill(proc)

    # The killed worker exported the span of the step it finished, in the caller's trace.
    first = [json.loads(line) for line in _lines(Path(worker_env[SPANS_ENV]))]
    assert [s["name"] for s in first] == ["step telx.prepare"]
    assert first[0]["trace_id"] == trace_id
    assert first[0]["attributes"]["durable.run.attempt"] == 1

    async with Engine(
        database_url,
        workflows=[checkout],
        tracer_provider=provider,
        lease_seconds=5,
        poll_interval=0.1,
    ) as engine:
        assert await engine.handle(handle.run_id).result(timeout=30) == [
            "prepared o-9",
            "charged o-9",
        ]
        deadline = time.monotonic() + 5
        while not any(
            s.name == "run_workflow telx.checkout" for s in exporter.get_finished_spans()
        ):
            assert time.monotonic() < deadline
            await anyio.sleep(0.01)
        here = engine.runtime.worker_id

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert sorted(spans) == [
        "POST /checkout",
        "run_workflow telx.checkout",
        "start_workflow telx.checkout",
        "step telx.charge",  # telx.prepare was replayed: no span in this process
    ]
    run = spans["run_workflow telx.checkout"]
    start = spans["start_workflow telx.checkout"]
    assert f"{run.context.trace_id:032x}" == trace_id
    assert run.parent is not None
    assert run.parent.span_id == start.context.span_id
    assert dict(run.attributes or {})["durable.run.attempt"] == 2
    assert dict(run.attributes or {})["durable.worker.id"] == here
    assert spans["step telx.charge"].parent.span_id == run.context.span_id  # type: ignore[union-attr]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.chaos.test_telemetry_resume <database_url>")
    anyio.run(_serve, sys.argv[1])
