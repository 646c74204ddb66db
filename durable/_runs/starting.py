"""The one way a run comes to exist: ``start_run(runtime, StartRequest(...))``.

App starts (``client.start``, ``workflow.start``), child runs and schedule ticks all build
a ``StartRequest`` and call ``start_run``: one PRODUCER span, one payload check, one
insert (on the caller's connection when it passes one, so the run commits or rolls back
with the caller's transaction).
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
        run_id, created = await runtime.store.insert_run(
            run_id=request.run_id,
            workflow=request.workflow,
            version=request.version,
            input_json=request.input_json,
            queue=request.queue,
            priority=request.priority,
            tags=request.tags,
            idempotency_key=request.idempotency_key,
            parent_run_id=request.parent_run_id,
            parent_cursor=request.parent_cursor,
            delay_seconds=request.delay_seconds,
            timeout_seconds=request.timeout_seconds,
            traceparent=started.traceparent,
            tracestate=started.tracestate,
            depth=request.depth,
            concurrency_key=request.concurrency_key,
            resource_id=request.resource_id,
            metadata_json=request.metadata_json,
            conn=conn,
        )
        started.stored(run_id, created)
    return run_id, created
