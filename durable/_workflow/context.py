"""The run being executed in this task, and its cursor.

A workflow's durable calls find their run through a contextvar, so steps stay plain
``async def`` functions: outside a run the contextvar is empty and a step is an ordinary
coroutine. Tasks spawned inside a run (``asyncio.gather``, task groups) inherit the same
``RunContext`` object, so every branch draws keys from one cursor, in call order.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol, TypeVar
from uuid import UUID

from structlog.contextvars import bind_contextvars, reset_contextvars

from durable._foundation.telemetry import bind_cursor
from durable._store.record_writer import PendingRecord
from durable.errors import DurableCallInStep, NonDeterminismError

if TYPE_CHECKING:
    from durable._runs.hook_dispatch import RunHooks
    from durable._runs.runtime import Runtime

T = TypeVar("T")

__all__ = [
    "Call",
    "CurrentRun",
    "CurrentStep",
    "ExecutionPort",
    "InStep",
    "ParkRequest",
    "Record",
    "RunContext",
    "Suspended",
    "current",
    "current_run",
    "current_step",
    "refuse_in_step",
    "require",
    "running_step_key",
    "workflow_context",
]


class Suspended(BaseException):
    """The run parked (sleeping or waiting); this execution ends without finishing it.

    A BaseException so that ``except Exception`` in workflow code cannot swallow it.
    """


class ExecutionPort(Protocol):
    """What durable calls need from the execution running their workflow: the worker's
    ``Execution`` implements it, and so does the replayer's database-free counterpart."""

    @property
    def runtime(self) -> Runtime: ...

    @property
    def hooks(self) -> RunHooks:
        """Lifecycle hook events of this execution (``NO_HOOKS`` when none apply)."""
        ...

    def clock(self) -> float:
        """The database clock, as an epoch timestamp."""
        ...

    async def record(self, ctx: RunContext, **fields: Any) -> bool:
        """Write one call's outcome (with the values pending before it); False: lease lost."""
        ...

    async def guarded(self, ctx: RunContext, call: Awaitable[T]) -> T:
        """Await a store call, turning infrastructure faults into a lost execution."""
        ...

    async def flush(self, ctx: RunContext) -> None:
        """Write the values recorded by synchronous calls, if any."""
        ...

    async def finish_call(self, ctx: RunContext, call: Call) -> None:
        """Mark a durable call done (no longer in flight)."""
        ...

    async def wait_until(self, ctx: RunContext, call: Call, epoch: float | None) -> None:
        """Wait in-process until ``epoch`` when it is near, else park the run."""
        ...

    async def park(self, ctx: RunContext, call: Call, request: ParkRequest) -> NoReturn:
        """Park the run (always raises ``Suspended``)."""
        ...


@dataclass(frozen=True, slots=True)
class ParkRequest:
    """A durable call that cannot go on in-process: park the run until ``wake_at``."""

    status: str
    """``sleeping`` (a timer or a retry backoff) or ``waiting`` (a signal or a child)."""
    wake_at: float | None
    """Database-clock epoch seconds; None waits until woken."""
    waiting_for: str | None = None
    """``signal:<name>`` or ``child:<run id>``: what wakes the run before ``wake_at``."""


@dataclass(eq=False, slots=True)
class Call:
    """One durable call in flight: its cursor key, position and record (if replaying)."""

    key: str
    seq: int
    record: Record | None
    done: bool = False


class Record(NamedTuple):
    """One recorded durable call, as loaded at claim time (a tuple: a replay builds one per
    recorded call, and a frozen dataclass costs about five times as much)."""

    key: str
    seq: int
    kind: str
    name: str
    status: str
    output: Any
    error: Any
    attempt: int
    retry_at: str | None = None

    @property
    def call(self) -> str:
        return _call_name(self.kind, self.name)


def _call_name(kind: str, name: str) -> str:
    return f"{kind}:{name}" if name else kind


def cursor_key(kind: str, name: str, n: int) -> str:
    """``<kind>:<name>#<n>``, or ``<kind>#<n>`` for nameless calls such as sleeps."""
    return f"{_call_name(kind, name)}#{n}"


@dataclass(frozen=True, slots=True)
class CurrentRun:
    """What ``durable.current_run()`` tells a workflow about itself."""

    run_id: UUID
    workflow: str
    version: int
    attempt: int
    cursor: str | None
    """The cursor key of the latest durable call, or None before the first."""
    replaying: bool


@dataclass(frozen=True, slots=True)
class CurrentStep:
    """What ``durable.current_step()`` tells a step body about itself."""

    run_id: UUID
    workflow: str
    name: str
    cursor_key: str
    """The step's cursor key in its run, e.g. ``step:charge#0``."""
    attempt: int
    """The step's own attempt: 1 first, 2 on its first retry (not the run's attempt)."""

    @property
    def idempotency_key(self) -> str:
        """``"<run id>:<cursor key>"``: the same on every attempt and every replay of this
        call, different for every other call; pass it to APIs that deduplicate requests."""
        return f"{self.run_id}:{self.cursor_key}"


@dataclass(eq=False)
class RunContext:
    """The state of one execution attempt of a run: its records and its cursor."""

    run_id: UUID
    workflow: str
    version: int
    attempt: int
    execution: ExecutionPort
    records: dict[str, Record] = field(default_factory=dict)
    by_seq: dict[int, Record] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    last_key: str | None = None
    fatal: BaseException | None = None
    """Set when this execution must end whatever the workflow code catches."""
    inflight: int = 0
    """Durable calls made and not yet recorded or parked (gather branches count each)."""
    park_requests: list[ParkRequest] = field(default_factory=list)
    pending: list[PendingRecord] = field(default_factory=list)
    """Values recorded by synchronous calls (now, uuid4, ...), written with the next write."""
    parked: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the run parked (or the execution ended): blocked branches then unwind.
    An asyncio event: one per run, and anyio's costs five times as much to make."""
    max_seq: int = -1
    depth: int = 0
    """How deep this run is nested: 0 for a run started by app code."""
    children_started: int = 0
    traceparent: str | None = None
    tracestate: str | None = None
    patches: dict[str, bool] = field(default_factory=dict)
    """What each ``patched(patch_id)`` answered in this execution (replay reports show it)."""
    step_timeout: float | None = None
    """The timeout of steps that set none: the workflow's ``step_timeout``, else the
    engine's ``default_step_timeout``."""
    step_retries: int = 0
    """The retries of steps that set none: the workflow's, else the engine's default."""

    @classmethod
    def load(cls, records: list[Record], **kwargs: Any) -> RunContext:
        ctx = cls(**kwargs)
        for record in records:
            ctx.records[record.key] = record
            ctx.by_seq[record.seq] = record
        ctx.max_seq = max(ctx.by_seq, default=-1)
        return ctx

    @property
    def replaying(self) -> bool:
        """True while the run re-executes calls that an earlier attempt recorded."""
        return self.seq <= self.max_seq

    def take(self, kind: str, name: str) -> tuple[str, int, Record | None]:
        """Assign the next cursor key to a call and return its record, if one exists.

        Raises NonDeterminismError (and marks the execution fatal) when the record at this
        position of the run belongs to a different call.
        """
        call = _call_name(kind, name)
        n = self.counters.get(call, 0)
        self.counters[call] = n + 1
        key = cursor_key(kind, name, n)
        seq = self.seq
        self.seq += 1
        self.last_key = key
        bind_cursor(key)  # structlog's `cursor`: the latest durable call
        at_position = self.by_seq.get(seq)
        if at_position is not None and at_position.key != key:
            error = NonDeterminismError(at_position.key, at_position.call, call)
            self.fatal = self.fatal or error
            raise error
        return key, seq, self.records.get(key)

    def begin(self, kind: str, name: str) -> Call:
        """Start a durable call: check the execution, take its key, count it in flight."""
        self.check()
        key, seq, record = self.take(kind, name)
        self.inflight += 1
        return Call(key, seq, record)

    def peek(self) -> Record | None:
        """The record at the next position, without taking it (for ``patched``)."""
        return self.by_seq.get(self.seq)

    def check(self) -> None:
        """Raise the fatal error, if any, before another durable call starts."""
        if self.fatal is not None:
            raise self.fatal
        if self.parked.is_set():
            raise Suspended

    @property
    def span_run(self) -> tuple[str, str, int, str]:
        """(workflow, run id, attempt, worker id): what a step's span names."""
        return self.workflow, str(self.run_id), self.attempt, self.execution.runtime.worker_id

    def info(self) -> CurrentRun:
        return CurrentRun(
            run_id=self.run_id,
            workflow=self.workflow,
            version=self.version,
            attempt=self.attempt,
            cursor=self.last_key,
            replaying=self.replaying,
        )


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "durable_run", default=None
)


def current() -> RunContext | None:
    """The run executing in this task, or None outside a workflow."""
    return _current.get()


def require(what: str) -> RunContext:
    """The current run; a clear RuntimeError when ``what`` is used outside a workflow, and
    ``DurableCallInStep`` when it is used inside a step's body."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError(f"{what} can only be used inside a @workflow")
    refuse_in_step(what)
    return ctx


def current_run() -> CurrentRun:
    """Run id, workflow name, version, attempt and cursor of the workflow running here
    (also inside a step's body)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("durable.current_run() can only be used inside a @workflow")
    return ctx.info()


_step: contextvars.ContextVar[CurrentStep | None] = contextvars.ContextVar(
    "durable_step", default=None
)


def current_step() -> CurrentStep:
    """Name, cursor key, attempt, run id and idempotency key of the step body running here.

    Raises ``RuntimeError`` outside a step body (in workflow code, or in a step called as
    a plain coroutine outside any run).
    """
    info = _step.get()
    if info is None:
        raise RuntimeError("durable.current_step() can only be used inside a @step body of a run")
    return info


def running_step_key() -> str | None:
    """The cursor key of the step whose body is running here, or None. A step's body is
    one recorded unit: calls made inside it are plain calls or refused, never recorded."""
    info = _step.get()
    return None if info is None else info.cursor_key


def workflow_context() -> RunContext | None:
    """The run, when the code here is the workflow's own (not a step's body)."""
    ctx = _current.get()
    return ctx if ctx is not None and _step.get() is None else None


def refuse_in_step(what: str) -> None:
    """Raise ``DurableCallInStep`` when ``what`` is called inside a step's body."""
    info = _step.get()
    if info is not None:
        raise DurableCallInStep(what, info.cursor_key)


class InStep:
    """Run a step attempt's body as ``info``; structlog gets its ``step_attempt``. A class,
    not a generator: one per executed step."""

    __slots__ = ("_bound", "_info", "_token")

    def __init__(self, info: CurrentStep) -> None:
        self._info = info

    def __enter__(self) -> None:
        self._token = _step.set(self._info)
        self._bound = bind_contextvars(step_attempt=self._info.attempt)

    def __exit__(self, *exc: object) -> None:
        reset_contextvars(**self._bound)
        _step.reset(self._token)


def enter(ctx: RunContext) -> contextvars.Token[RunContext | None]:
    return _current.set(ctx)


def leave(token: contextvars.Token[RunContext | None]) -> None:
    _current.reset(token)
