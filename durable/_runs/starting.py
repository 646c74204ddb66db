"""The one way a run comes to exist: ``start_run(runtime, NewRun(...))``.

App starts (``client.start``, ``workflow.start``), child runs and schedule ticks all build
a ``NewRun`` (validated and encoded) and call ``start_run``: one PRODUCER span, one
payload check, one insert (on the caller's connection when it passes one, so the run
commits or rolls back with the caller's transaction; otherwise combined with the
client's concurrent starts).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg

from durable._foundation.codec import Signature, encode_start_input
from durable._foundation.limits import check_payload
from durable._runs.runtime import Runtime
from durable._store.listener import Signal
from durable._store.run_inserts import NewRun, insert_run

__all__ = ["NewRun", "encode_input", "start_heard", "start_run"]


def encode_input(
    runtime: Runtime,
    what: str,
    signature: Signature | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    by_name: bool = False,
) -> str:
    """A run's arguments as stored JSON, refused (``SerializationError``,
    ``PayloadTooLarge``) before anything is written. ``what`` names it in errors."""
    input_json = encode_start_input(signature, args, kwargs, by_name=by_name)
    check_payload(f"the input of {what}", input_json, runtime.settings.max_input_bytes)
    return input_json


async def start_run(
    runtime: Runtime,
    request: NewRun,
    *,
    root_span: bool = False,
    conn: asyncpg.Connection | None = None,
) -> tuple[UUID, bool]:
    """Store the run in its PRODUCER span, whose context it carries; (run id, created). An
    existing run with the same id or idempotency key wins: its id comes back with
    ``created=False``. ``root_span`` starts a new trace (schedule ticks) instead of joining
    the current span."""
    telemetry = runtime.telemetry
    with telemetry.start_workflow(
        request.workflow, request.version, request.queue, request.run_id, root=root_span
    ) as started:
        run = replace(request, traceparent=started.traceparent, tracestate=started.tracestate)
        if conn is None:  # combined with this client's concurrent starts under load
            run_id, created = await runtime.starts.start(run)
        else:  # in the caller's transaction: commits or rolls back with it, alone
            run_id, created = await insert_run(conn, run)
        started.stored(run_id, created)
    return run_id, created


async def start_heard(
    runtime: Runtime, request: NewRun, conn: asyncpg.Connection | None
) -> tuple[UUID, bool, Signal | None]:
    """``start_run``, subscribed to the run's notifications before it exists when this
    process hears run news: ``result()`` then waits for its NOTIFY without reading first
    (the run may finish before the start returns). The subscription is None when not
    heard, or when the start returned an existing run (``result()`` reads that one)."""
    listener = runtime.listener
    news = listener.subscribe(request.run_id) if listener.hears_runs else None
    run_id, created = request.run_id, False
    try:
        run_id, created = await start_run(runtime, request, conn=conn)
    finally:
        if news is not None and not (created and run_id == request.run_id):
            listener.unsubscribe(request.run_id, news)
            news = None
    return run_id, created, news
