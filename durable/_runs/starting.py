"""The one way a run comes to exist: ``start_run(runtime, StartRequest(...))``.

App starts (``client.start``, ``workflow.start``), child runs and schedule ticks all build
a ``StartRequest`` and call ``start_run``: one PRODUCER span, one payload check, one
insert (on the caller's connection when it passes one, so the run commits or rolls back
with the caller's transaction; otherwise combined with the client's concurrent starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from durable._foundation.codec import Signature, encode_start_input
from durable._foundation.limits import check_payload
from durable._runs.runtime import Runtime
from durable._store.run_inserts import NewRun, insert_run

__all__ = ["StartRequest", "encode_input", "start_run"]


@dataclass(frozen=True, slots=True)
class StartRequest:
    """Everything stored with a new run, already validated and encoded."""

    run_id: UUID
    workflow: str
    version: int
    queue: str
    input_json: str
    priority: int = 0
    tags: Sequence[str] = ()
    idempotency_key: str | None = None
    delay_seconds: float | None = None
    timeout_seconds: float | None = None
    concurrency_key: str | None = None
    resource_id: str | None = None
    metadata_json: str | None = None
    parent_run_id: UUID | None = None
    parent_cursor: str | None = None
    depth: int = 0
    root_span: bool = False
    """Start a new trace (schedule ticks) instead of joining the current span."""


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
    runtime: Runtime, request: StartRequest, *, conn: asyncpg.Connection | None = None
) -> tuple[UUID, bool]:
    """Store the run in its PRODUCER span; (run id, created). An existing run with the same
    id or idempotency key wins: its id comes back with ``created=False``."""
    telemetry = runtime.telemetry
    with telemetry.start_workflow(
        request.workflow, request.version, request.queue, request.run_id, root=request.root_span
    ) as started:
        run = NewRun(
            request.run_id, request.workflow, request.version, request.input_json,
            request.queue, request.priority, request.tags, request.idempotency_key,
            request.parent_run_id, request.parent_cursor, request.delay_seconds,
            request.timeout_seconds, started.traceparent, started.tracestate, request.depth,
            request.concurrency_key, request.resource_id, request.metadata_json,
        )  # fmt: skip
        if conn is None:  # combined with this client's concurrent starts under load
            run_id, created = await runtime.starts.start(run)
        else:  # in the caller's transaction: commits or rolls back with it, alone
            run_id, created = await insert_run(conn, run)
        started.stored(run_id, created)
    return run_id, created
