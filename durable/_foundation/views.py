"""What users read about runs: statuses, run details, step timelines and pages."""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from durable.errors import ErrorInfo

__all__ = [
    "AttemptInfo",
    "Page",
    "RunDetail",
    "RunStatus",
    "RunSummary",
    "SignalInfo",
    "StepInfo",
]

T = TypeVar("T")


class RunStatus(enum.StrEnum):
    """The status of a run; a ``str`` enum, so ``status == "completed"`` holds.

    ``failed`` covers every run that ended in an error: its ``error.code`` tells which, e.g.
    ``workflow_timeout`` for a run past its timeout (``WorkflowTimeout``),
    ``run_attempts_exhausted`` for a poison run (``RunAttemptsExhausted``). ``cancelled`` is
    for ``engine.cancel`` and for the children of a cancelled or timed-out run.
    """

    PENDING = "pending"
    RUNNING = "running"
    SLEEPING = "sleeping"
    WAITING = "waiting"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for completed, failed and cancelled runs."""
        return self in _FINISHED


_FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One attempt of a step (``StepInfo.attempts``): ``status`` is ``retrying`` for a
    failed attempt that was retried, else the step's own status for its latest attempt
    (``completed``, ``failed``, or ``retrying`` while the next attempt is due)."""

    attempt: int
    status: str
    error: ErrorInfo | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class StepInfo:
    """One recorded durable call in a run's timeline. ``attempt``, ``error`` and
    ``finished_at`` are those of its latest attempt, ``started_at`` that of its first."""

    cursor_key: str
    kind: str
    name: str
    status: str
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    output: Any
    error: ErrorInfo | None
    attempts: list[AttemptInfo] = field(default_factory=list)
    """Every attempt, oldest first, including the latest: the errors of retried attempts
    stay here after the step completes."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run got (``handle.progress()``, ``RunDetail.progress``)."""

    completed_steps: int
    """Steps of the run that completed (failed and retrying attempts do not count)."""
    fraction: float | None
    """The latest ``durable.set_progress`` fraction; else completed / ``expected_steps``
    (capped at 1.0); 1.0 once the run completed; None when nothing declares a total."""
    message: str | None = None
    """The message of the latest ``durable.set_progress``."""
    expected_steps: int | None = None
    """``@workflow(expected_steps=)`` of the run's workflow version, as workers registered."""


def progress_of(
    status: str,
    completed_steps: int,
    declared: float | None,
    message: str | None,
    expected_steps: int | None,
) -> Progress:
    """A run's progress from its row: declared, else counted against the expected steps."""
    fraction = declared
    if status == RunStatus.COMPLETED:
        fraction = 1.0
    elif fraction is None and expected_steps:
        fraction = min(1.0, completed_steps / expected_steps)
    return Progress(completed_steps, fraction, message, expected_steps)


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """One signal sent to a run: ``status`` is ``pending`` (buffered for a later wait),
    ``consumed`` (by the wait at ``consumed_by``) or ``rejected`` (its payload did not
    match the type of the wait that found it; ``rejected`` says why)."""

    name: str
    seq: int
    payload: Any
    status: str
    consumed_by: str | None
    rejected: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as listed by ``engine.list_runs``."""

    run_id: UUID
    workflow: str
    version: int
    status: RunStatus
    error: ErrorInfo | None
    tags: list[str]
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent_run_id: UUID | None
    queue: str = "default"
    version_available: bool = True
    """False when no live worker serves this run's (workflow, version): it cannot progress
    until one is deployed."""
    resource_id: str | None = None
    """The resource (tenant, user) the run belongs to (``start(resource_id=)``)."""
    metadata: dict[str, Any] | None = None
    """The caller's labels (``start(metadata=)``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDetail(RunSummary):
    """Everything recorded about one run (``engine.get_run``): the summary's fields plus
    input, output, the steps timeline, children and events."""

    input: Any
    output: Any
    steps: list[StepInfo] = field(default_factory=list)
    children: list[UUID] = field(default_factory=list)
    events: dict[str, Any] = field(default_factory=dict)
    forked_from: UUID | None = None
    """The run this one was forked from (``engine.fork``), if any."""
    progress: Progress | None = None
    """Completed steps and, when declared, the fraction done (see ``Progress``)."""
    previous_errors: list[ErrorInfo] = field(default_factory=list)
    """The error of every earlier failed attempt of this run, oldest first: each automatic
    retry (``@workflow(retries=)``) and each ``engine.retry`` adds the error it retried."""
    signals: list[SignalInfo] = field(default_factory=list)
    """The signals sent to the run, in arrival order, with what became of each."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; pass ``next_cursor`` back to get the next (None: last page)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, run_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(run_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, id) position of a page cursor; ValueError for a malformed one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, run_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), UUID(run_id)
    except (ValueError, TypeError, RecursionError, OverflowError):
        # Not chained, and not echoed in full: a forged cursor may be huge or nested.
        raise ValueError(f"invalid page cursor {str(cursor)[:40]!r}") from None
