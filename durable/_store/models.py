"""SQLModel tables of the ``durable`` schema: the typed source of truth for its shape.

The numbered migrations under ``durable/sql/migrations`` install these tables; a test
compiles this metadata into DDL and diffs it against the migrated database. The runtime
never goes through the ORM: these classes are for schema checks, migrations tooling and
users who want typed rows (``session.exec(select(Run))``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger as SABigInteger
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID
from sqlmodel import Field, SQLModel

__all__ = [
    "SCHEMA",
    "Clock",
    "Event",
    "EventLogEntry",
    "Partitioning",
    "Queue",
    "QueueStart",
    "Run",
    "Schedule",
    "SchemaMigration",
    "Signal",
    "Step",
    "WebhookCursor",
    "WebhookEndpointRow",
    "WorkerRow",
    "WorkflowVersion",
    "metadata",
]

SCHEMA = "durable"
metadata = MetaData(schema=SCHEMA)
_NOW = text("durable.now()")
_ACTIVE = "status IN ('pending', 'running', 'sleeping', 'waiting')"


class _Base(SQLModel):
    metadata = metadata


def _ts(*, nullable: bool = True, now: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=nullable, server_default=_NOW if now else None
        ),
    )


def _col(type_: Any, *, nullable: bool = True, default: str | None = None, **kw: Any) -> Any:
    server_default = text(default) if default is not None else None
    return Field(
        default=None,
        sa_column=Column(type_, nullable=nullable, server_default=server_default, **kw),
    )


class Clock(_Base, table=True):
    """The single-row offset added to the database clock by ``durable.now()``."""

    __tablename__ = "clock"
    __table_args__ = (CheckConstraint("id", name="clock_id_check"),)
    id: bool = Field(sa_column=Column(Boolean, primary_key=True, server_default=text("true")))
    offset_seconds: float = _col(Double, nullable=False, default="0")


class Run(_Base, table=True):
    """One execution of a workflow, from start to its final status."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'sleeping', 'waiting', 'paused', "
            "'completed', 'failed', 'cancelled')",
            name="runs_status_check",
        ),
        Index("runs_claim_idx", "wake_at", postgresql_where=text(_ACTIVE)),
        Index(
            "runs_claim_workflow_idx",
            "workflow_name",
            "workflow_version",
            text("priority DESC"),
            "wake_at",
            postgresql_where=text(f"{_ACTIVE} AND concurrency_key IS NULL"),
        ),
        Index(
            "runs_idempotency_idx",
            "workflow_name",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("runs_created_idx", text("created_at DESC"), text("id DESC")),
        Index(
            "runs_resource_idx",
            "resource_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("resource_id IS NOT NULL"),
        ),
        Index(
            "runs_parent_idx", "parent_run_id", postgresql_where=text("parent_run_id IS NOT NULL")
        ),
        Index("runs_tags_idx", "tags", postgresql_using="gin"),
        CheckConstraint(
            "paused_from IN ('pending', 'running', 'sleeping', 'waiting')",
            name="runs_paused_from_check",
        ),
        Index(
            "runs_prune_idx",
            "finished_at",
            "id",
            postgresql_where=text(
                "parent_run_id IS NULL AND status IN ('completed', 'failed', 'cancelled')"
            ),
        ),
    )
    id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), primary_key=True))
    workflow_name: str = _col(Text, nullable=False)
    workflow_version: int = _col(Integer, nullable=False, default="1")
    status: str = _col(Text, nullable=False, default="'pending'")
    input: Any = _col(JSON, nullable=False)
    output: Any = _col(JSON)
    error: Any = _col(JSON)
    queue: str = _col(Text, nullable=False, default="'default'")
    priority: int = _col(Integer, nullable=False, default="0")
    tags: list[str] = _col(ARRAY(Text), nullable=False, default="'{}'")
    idempotency_key: str | None = _col(Text)
    parent_run_id: uuid.UUID | None = _col(UUID(as_uuid=True))
    parent_cursor: str | None = _col(Text)
    wake_at: datetime | None = _ts()
    lease_owner: str | None = _col(Text)
    lease_expires_at: datetime | None = _ts()
    attempt: int = _col(Integer, nullable=False, default="0")
    deadline_at: datetime | None = _ts()
    traceparent: str | None = _col(Text)
    tracestate: str | None = _col(Text)
    created_at: datetime = _ts(nullable=False, now=True)
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    updated_at: datetime = _ts(nullable=False, now=True)
    waiting_for: list[str] | None = _col(ARRAY(Text))
    """What a parked run waits for: ``signal:<name>`` and ``child:<run id>`` entries."""
    depth: int = _col(Integer, nullable=False, default="0")
    concurrency_key: str | None = _col(Text)
    """Runs sharing a key in a queue run at most ``key_concurrency`` at a time."""
    forked_from: uuid.UUID | None = _col(UUID(as_uuid=True))
    """The run whose records a fork reused (``engine.fork``)."""
    paused_from: str | None = _col(Text)
    """The status a paused run returns to on ``engine.resume``."""
    lost_executions: int = _col(Integer, nullable=False, default="0")
    """Executions in a row whose lease expired before they recorded or parked anything."""
    claimed_at: datetime | None = _ts()
    """When the current (or last) execution claimed the run."""
    auto_retries: int = _col(Integer, nullable=False, default="0")
    """Automatic retries so far (``@workflow(retries=)``)."""
    previous_errors: Any = _col(JSONB, nullable=False, default="'[]'::jsonb")
    """The error of every failed attempt that was retried, oldest first."""
    progress_fraction: float | None = _col(Double)
    """The fraction of the latest ``durable.set_progress``."""
    progress_message: str | None = _col(Text)
    """The message of the latest ``durable.set_progress``."""
    resource_id: str | None = _col(Text)
    """The tenant, user or account the run belongs to (``start(resource_id=)``)."""
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSONB))
    """The caller's small JSON object (``start(metadata=)``); ``metadata`` is taken by
    SQLAlchemy, hence the attribute name."""
    watchers: int = _col(Integer, nullable=False, default="0")
    """How many ``handle.wait(step=/signal=)`` calls wait on this run now."""
    watch_until: datetime | None = _ts()
    """Step records NOTIFY while this is in the future (waiters keep it ahead)."""


class Step(_Base, table=True):
    """The recorded outcome of one durable call of a run, keyed by its cursor key."""

    __tablename__ = "steps"
    __table_args__ = (
        CheckConstraint(
            "status IN ('completed', 'failed', 'retrying', 'waiting')", name="steps_status_check"
        ),
    )
    # No foreign key: every write is fenced on the run row already (see record_step).
    run_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), primary_key=True))
    cursor_key: str = Field(sa_column=Column(Text, primary_key=True))
    seq: int = _col(Integer, nullable=False)
    kind: str = _col(Text, nullable=False)
    name: str = _col(Text, nullable=False)
    status: str = _col(Text, nullable=False)
    output: Any = _col(JSON)
    error: Any = _col(JSON)
    attempt: int = _col(Integer, nullable=False, default="1")
    retry_at: datetime | None = _ts()
    started_at: datetime | None = _ts()
    finished_at: datetime = _ts(nullable=False, now=True)
    earlier_attempts: Any = _col(JSONB, nullable=False, default="'[]'::jsonb")
    """Each failed attempt a retry replaced, oldest first: attempt, error, started/finished."""


def _run_fk() -> Any:
    return Field(
        sa_column=Column(
            UUID(as_uuid=True),
            ForeignKey("durable.runs.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )


class Signal(_Base, table=True):
    """A signal sent to a run, buffered until a matching wait consumes it."""

    __tablename__ = "signals"
    __table_args__ = (
        Index(
            "signals_dedupe_idx",
            "run_id",
            "name",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index(
            "signals_pending_idx",
            "run_id",
            "name",
            "seq",
            postgresql_where=text("consumed_by IS NULL"),
        ),
    )
    run_id: uuid.UUID = _run_fk()
    name: str = Field(sa_column=Column(Text, primary_key=True))
    seq: int = Field(sa_column=Column(SABigInteger, Identity(always=True), primary_key=True))
    payload: Any = _col(JSON)
    idempotency_key: str | None = _col(Text)
    consumed_by: str | None = _col(Text)
    created_at: datetime = _ts(nullable=False, now=True)
    rejected: str | None = _col(Text)
    """Why a wait refused the payload (it stays unconsumed); NULL for a usable signal."""
    traceparent: str | None = _col(Text)
    """W3C trace context of the span that sent the signal; its consumer links to it."""
    tracestate: str | None = _col(Text)


class Event(_Base, table=True):
    """The latest value a run published under a key with ``durable.set_event``."""

    __tablename__ = "events"
    run_id: uuid.UUID = _run_fk()
    key: str = Field(sa_column=Column(Text, primary_key=True))
    value: Any = _col(JSON)
    updated_at: datetime = _ts(nullable=False, now=True)


class EventLogEntry(_Base, table=True):
    """One lifecycle transition (``engine.events``), appended by a trigger (migration 0012)
    in the transaction that made it; position ``(xid, seq)``."""

    __tablename__ = "event_log"
    __table_args__ = (Index("event_log_run_idx", "run_id"),)
    xid: int = Field(
        sa_column=Column(
            SABigInteger,
            primary_key=True,
            autoincrement=False,
            server_default=text("(pg_current_xact_id())::text::bigint"),
        )
    )
    seq: int = Field(sa_column=Column(SABigInteger, Identity(always=True), primary_key=True))
    run_id: uuid.UUID = _col(UUID(as_uuid=True), nullable=False)
    workflow_name: str = _col(Text, nullable=False)
    kind: str = _col(Text, nullable=False)
    step_key: str | None = _col(Text)
    step_name: str | None = _col(Text)
    attempt: int | None = _col(Integer)
    at: datetime = _ts(nullable=False, now=True)


class WebhookEndpointRow(_Base, table=True):
    """An outbound webhook endpoint; its secret never leaves this row but to sign."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("max_attempts >= 1", name="webhook_endpoints_max_attempts_check"),
        CheckConstraint("retry_interval >= 0", name="webhook_endpoints_retry_interval_check"),
        CheckConstraint("timeout_seconds > 0", name="webhook_endpoints_timeout_seconds_check"),
    )
    id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), primary_key=True))
    url: str = _col(Text, nullable=False)
    secret: str = _col(Text, nullable=False)
    kinds: list[str] = _col(ARRAY(Text), nullable=False, default="'{}'::text[]")
    workflows: list[str] = _col(ARRAY(Text), nullable=False, default="'{}'::text[]")
    description: str = _col(Text, nullable=False, default="''::text")
    max_attempts: int = _col(Integer, nullable=False, default="8")
    retry_interval: float = _col(Double, nullable=False, default="5")
    timeout_seconds: float = _col(Double, nullable=False, default="10")
    from_xid: int = _col(SABigInteger, nullable=False)
    disabled: bool = _col(Boolean, nullable=False, default="false")
    created_at: datetime = _ts(nullable=False, now=True)


class WebhookCursor(_Base, table=True):
    """How far webhook dispatch has turned events into delivery runs (one row)."""

    __tablename__ = "webhook_cursor"
    __table_args__ = (CheckConstraint("id", name="webhook_cursor_id_check"),)
    id: bool = Field(sa_column=Column(Boolean, primary_key=True, server_default=text("true")))
    xid: int = _col(SABigInteger, nullable=False)
    seq: int = _col(SABigInteger, nullable=False)


class Schedule(_Base, table=True):
    """A cron schedule that starts one run of a workflow per tick."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint(
            "overlap IN ('skip', 'allow', 'buffer_one')", name="schedules_overlap_check"
        ),
        CheckConstraint(
            "catch_up IN ('skip_missed', 'run_missed')", name="schedules_catch_up_check"
        ),
        CheckConstraint("max_catch_up >= 1", name="schedules_max_catch_up_check"),
        CheckConstraint("source IN ('api', 'decorator', 'builtin')", name="schedules_source_check"),
        Index("schedules_due_idx", "next_fire_at", postgresql_where=text("NOT paused")),
    )
    name: str = Field(sa_column=Column(Text, primary_key=True))
    workflow_name: str = _col(Text, nullable=False)
    cron: str = _col(Text, nullable=False)
    timezone: str = _col(Text, nullable=False, default="'UTC'")
    input: Any = _col(JSON, nullable=False, default='\'{"args": [], "kwargs": {}}\'')
    next_fire_at: datetime | None = _ts()
    last_fired_at: datetime | None = _ts()
    overlap: str = _col(Text, nullable=False, default="'skip'")
    catch_up: str = _col(Text, nullable=False, default="'skip_missed'")
    jitter_seconds: float = _col(Double, nullable=False, default="0")
    paused: bool = _col(Boolean, nullable=False, default="false")
    created_at: datetime = _ts(nullable=False, now=True)
    max_catch_up: int = _col(Integer, nullable=False, default="10")
    """How many missed ticks ``run_missed`` starts after downtime (the latest ones)."""
    buffered_at: datetime | None = _ts()
    """The tick ``buffer_one`` holds back until the schedule's running run finishes."""
    last_run_id: uuid.UUID | None = _col(UUID(as_uuid=True))
    source: str = _col(Text, nullable=False, default="'api'")
    """Who defined it: ``api`` (engine.schedules), ``decorator`` or ``builtin``."""
    updated_at: datetime = _ts(nullable=False, now=True)


class WorkflowVersion(_Base, table=True):
    """A (name, version) pair that some worker has served."""

    __tablename__ = "workflows"
    name: str = Field(sa_column=Column(Text, primary_key=True))
    version: int = Field(sa_column=Column(Integer, primary_key=True))
    queue: str = _col(Text, nullable=False, default="'default'")
    registered_at: datetime = _ts(nullable=False, now=True)
    last_seen_at: datetime = _ts(nullable=False, now=True)
    expected_steps: int | None = _col(Integer)
    """``@workflow(expected_steps=)`` of this version, for progress fractions."""
    timeout_seconds: float | None = _col(Double)
    """The workflow's timeout, for starts by name from a process without the code."""


class WorkerRow(_Base, table=True):
    """A worker process, with the heartbeat that shows it is alive."""

    __tablename__ = "workers"
    id: str = Field(sa_column=Column(Text, primary_key=True))
    hostname: str = _col(Text, nullable=False)
    pid: int = _col(Integer, nullable=False)
    queues: list[str] = _col(ARRAY(Text), nullable=False, default="'{}'")
    concurrency: int = _col(Integer, nullable=False)
    workflows: list[str] = _col(ARRAY(Text), nullable=False, default="'{}'")
    """``name@version`` of every workflow this worker serves."""
    started_at: datetime = _ts(nullable=False, now=True)
    heartbeat_at: datetime = _ts(nullable=False, now=True)


class Queue(_Base, table=True):
    """Limits of a managed queue, enforced inside the claim across all workers."""

    __tablename__ = "queues"
    __table_args__ = (
        CheckConstraint("concurrency > 0", name="queues_concurrency_check"),
        CheckConstraint("rate_limit > 0", name="queues_rate_limit_check"),
        CheckConstraint("rate_period_seconds > 0", name="queues_rate_period_seconds_check"),
        CheckConstraint("key_concurrency > 0", name="queues_key_concurrency_check"),
        CheckConstraint(
            "(rate_limit IS NULL) = (rate_period_seconds IS NULL)", name="queues_check"
        ),
    )
    name: str = Field(sa_column=Column(Text, primary_key=True))
    concurrency: int | None = _col(Integer)
    rate_limit: int | None = _col(Integer)
    rate_period_seconds: float | None = _col(Double)
    key_concurrency: int = _col(Integer, nullable=False, default="1")
    updated_at: datetime = _ts(nullable=False, now=True)


class QueueStart(_Base, table=True):
    """A first claim of a rate-limited queue's run, kept for one rate window."""

    __tablename__ = "queue_starts"
    queue: str = Field(sa_column=Column(Text, primary_key=True))
    started_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), primary_key=True, server_default=_NOW)
    )
    run_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), primary_key=True))


class Partitioning(_Base, table=True):
    """Present (one row) when ``durable.steps`` is partitioned by run id, one period each."""

    __tablename__ = "partitioning"
    __table_args__ = (
        CheckConstraint("id", name="partitioning_id_check"),
        CheckConstraint("period_seconds >= 60", name="partitioning_period_seconds_check"),
        CheckConstraint("ahead >= 1", name="partitioning_ahead_check"),
    )
    id: bool = Field(sa_column=Column(Boolean, primary_key=True, server_default=text("true")))
    period_seconds: float = _col(Double, nullable=False)
    ahead: int = _col(Integer, nullable=False, default="3")
    created_at: datetime = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class SchemaMigration(_Base, table=True):
    """A migration applied to this database."""

    __tablename__ = "schema_migrations"
    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = _col(Text, nullable=False)
    checksum: str = _col(Text, nullable=False)
    applied_at: datetime = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
