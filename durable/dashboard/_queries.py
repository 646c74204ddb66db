"""Every read the dashboard makes beyond the engine's own methods: named statements from
``durable/sql/queries.sql`` run on the store's pool, returned as typed rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from durable._foundation.codec import decode_json
from durable._store.store import Store
from durable.sql import query

__all__ = [
    "Bucket",
    "QueueRow",
    "SignalRow",
    "StuckRun",
    "WorkerRow",
    "WorkflowRow",
    "queues",
    "run_signals",
    "stuck_runs",
    "throughput",
    "workers",
    "workflow_names",
    "workflows",
]


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    """A registered (name, version) and the runs of that name per status."""

    name: str
    version: int
    queue: str
    last_seen_at: datetime
    runs: dict[str, int] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A registered worker and how long since its last heartbeat."""

    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    workflows: list[str]
    started_at: datetime
    heartbeat_at: datetime
    silent_seconds: float


@dataclass(frozen=True, slots=True)
class Bucket:
    """Runs created in one time bucket, by status."""

    start: datetime
    runs: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.runs.values())

    @property
    def failed(self) -> int:
        return self.runs.get("failed", 0)


@dataclass(frozen=True, slots=True)
class StuckRun:
    """A run due for a while that no worker picked up (or whose lease expired)."""

    run_id: UUID
    workflow: str
    status: str
    queue: str
    wake_at: datetime
    lease_owner: str | None
    overdue_seconds: float


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue's depth, lag, in-flight and parked runs, and its limits."""

    name: str
    depth: int
    lag: float | None
    in_flight: int
    parked: int
    concurrency: int | None
    rate_limit: int | None
    rate_period_seconds: float | None
    key_concurrency: int | None
    managed: bool


@dataclass(frozen=True, slots=True)
class SignalRow:
    """A signal sent to a run, consumed (by the call at ``consumed_by``) or buffered."""

    name: str
    seq: int
    payload: Any
    consumed_by: str | None
    created_at: datetime


async def workflows(store: Store) -> list[WorkflowRow]:
    """Registered workflows with their run counts per status and the live workers serving
    each (name, version)."""
    async with store.pool.acquire() as conn:
        registered = await conn.fetch(query("dashboard_workflows"))
        counts = await conn.fetch(query("dashboard_status_counts"))
        live = await conn.fetch(query("dashboard_workers"))
    per_name: dict[str, dict[str, int]] = defaultdict(dict)
    for row in counts:
        per_name[row["workflow_name"]][row["status"]] = row["runs"]
    return [
        WorkflowRow(
            name=r["name"],
            version=r["version"],
            queue=r["queue"],
            last_seen_at=r["last_seen_at"],
            runs=per_name.get(r["name"], {}),
            workers=[
                w["id"] for w in live if f"{r['name']}@{r['version']}" in (w["workflows"] or ())
            ],
        )
        for r in registered
    ]


async def workflow_names(store: Store) -> list[str]:
    """The names of every registered workflow, sorted (the runs page's filter)."""
    rows = await store.pool.fetch(query("dashboard_workflows"))
    return sorted({r["name"] for r in rows})


async def workers(store: Store) -> list[WorkerRow]:
    """Every registered worker, freshest heartbeat first."""
    rows = await store.pool.fetch(query("dashboard_workers"))
    return [
        WorkerRow(
            id=r["id"],
            hostname=r["hostname"],
            pid=r["pid"],
            queues=list(r["queues"]),
            concurrency=r["concurrency"],
            workflows=list(r["workflows"]),
            started_at=r["started_at"],
            heartbeat_at=r["heartbeat_at"],
            silent_seconds=r["silent_seconds"],
        )
        for r in rows
    ]


async def throughput(store: Store, since: datetime, bucket_seconds: float) -> list[Bucket]:
    """Runs created since ``since`` per bucket (only buckets that have runs)."""
    rows = await store.pool.fetch(query("dashboard_throughput"), since, bucket_seconds)
    buckets: dict[datetime, dict[str, int]] = {}
    for row in rows:
        buckets.setdefault(row["bucket"], {})[row["status"]] = row["runs"]
    return [Bucket(start, runs) for start, runs in buckets.items()]


async def stuck_runs(store: Store, overdue_seconds: float, limit: int = 50) -> list[StuckRun]:
    """Unfinished runs due for longer than ``overdue_seconds`` and not picked up."""
    rows = await store.pool.fetch(query("dashboard_stuck_runs"), overdue_seconds, limit)
    return [
        StuckRun(
            run_id=r["id"],
            workflow=r["workflow_name"],
            status=r["status"],
            queue=r["queue"],
            wake_at=r["wake_at"],
            lease_owner=r["lease_owner"],
            overdue_seconds=r["overdue_seconds"],
        )
        for r in rows
    ]


async def queues(store: Store) -> list[QueueRow]:
    """Every queue with unfinished runs or configured limits."""
    rows = await store.pool.fetch(query("dashboard_queues"))
    return [
        QueueRow(
            name=r["name"],
            depth=r["depth"],
            lag=r["lag"],
            in_flight=r["in_flight"],
            parked=r["parked"],
            concurrency=r["concurrency"],
            rate_limit=r["rate_limit"],
            rate_period_seconds=r["rate_period_seconds"],
            key_concurrency=r["key_concurrency"],
            managed=r["managed"],
        )
        for r in rows
    ]


async def run_signals(store: Store, run_id: UUID) -> list[SignalRow]:
    """Every signal sent to ``run_id``, in the order sent."""
    rows = await store.pool.fetch(query("run_signals"), run_id)
    return [
        SignalRow(
            name=r["name"],
            seq=r["seq"],
            payload=decode_json(r["payload"]),
            consumed_by=r["consumed_by"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
