"""What an entered engine shares with its worker and executions: settings, store, clock."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from durable._foundation.telemetry import Telemetry
from durable._foundation.validate import names, real, seconds, whole
from durable._runs.hook_dispatch import HookDispatcher
from durable._runs.registry import Registry
from durable._store.outcome_reader import OutcomeReader
from durable._store.record_writer import RecordWriter
from durable._store.run_inserts import RunInserts
from durable._store.store import Store

if TYPE_CHECKING:
    from durable._store.listener import Listener

__all__ = ["HandleFactory", "Runtime", "Settings", "new_worker_id"]

HandleFactory = Callable[[uuid.UUID, Any, uuid.UUID], Any]


@dataclass(frozen=True, slots=True)
class Settings:
    """Engine tuning options, validated once (``_validate``: a wrong type raises TypeError,
    a value out of range or not finite ValueError)."""

    concurrency: int = 16
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    poll_interval: float = 5.0
    inline_wait_seconds: float = 5.0
    shutdown_grace_seconds: float = 30.0
    queues: tuple[str, ...] = ("default",)
    max_child_depth: int = 8
    max_children_per_run: int = 1000
    max_input_bytes: int = 1 << 20
    """Cap on a run's encoded input (``engine.start``, child runs, schedules)."""
    max_output_bytes: int = 1 << 20
    """Cap on an encoded step or workflow result."""
    max_signal_bytes: int = 256 << 10
    """Cap on an encoded signal payload."""
    retention_seconds: float | None = None
    """Finished runs older than this are pruned by a built-in schedule (None: kept)."""
    default_workflow_timeout: float | None = None
    """The timeout of runs whose workflow and start name none (None: no limit)."""
    default_step_timeout: float | None = None
    """The timeout of steps that set none, in workflows that set no ``step_timeout``."""
    default_step_retries: int = 0
    """The retries of steps that set none, in workflows that set no ``step_retries``."""
    max_run_attempts: int = 10
    """Executions in a row that may lose their lease for nothing before the run fails."""

    def __post_init__(self) -> None:
        checked: dict[str, object] = {
            "concurrency": whole("concurrency", self.concurrency, low=1),
            "lease_seconds": real("lease_seconds", self.lease_seconds, above=True),
            "heartbeat_seconds": real("heartbeat_seconds", self.heartbeat_seconds, above=True),
            "poll_interval": real("poll_interval", self.poll_interval, above=True),
            "inline_wait_seconds": real("inline_wait_seconds", self.inline_wait_seconds),
            "shutdown_grace_seconds": real("shutdown_grace_seconds", self.shutdown_grace_seconds),
            "queues": names("queues", self.queues),
            "max_child_depth": whole("max_child_depth", self.max_child_depth),
            "max_children_per_run": whole("max_children_per_run", self.max_children_per_run),
            "max_input_bytes": whole("max_input_bytes", self.max_input_bytes, low=1),
            "max_output_bytes": whole("max_output_bytes", self.max_output_bytes, low=1),
            "max_signal_bytes": whole("max_signal_bytes", self.max_signal_bytes, low=1),
            "max_run_attempts": whole("max_run_attempts", self.max_run_attempts, low=1),
        }
        if self.retention_seconds is not None:
            checked["retention_seconds"] = seconds(
                "retention", self.retention_seconds, positive=True
            )
        for option, value in checked.items():  # normalised: 30 -> 30.0, a list -> a tuple
            object.__setattr__(self, option, value)
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be shorter than "
                f"lease_seconds ({self.lease_seconds}), or leases expire between heartbeats"
            )

    def step_defaults(self, timeout: float | None, retries: int | None) -> tuple[float | None, int]:
        """A workflow's step timeout and retries, the engine's defaults filling the gaps."""
        return (
            self.default_step_timeout if timeout is None else timeout,
            self.default_step_retries if retries is None else retries,
        )

    def run_timeout(self, *choices: float | None) -> float | None:
        """The first timeout set among ``choices`` (most specific first), else the default."""
        for choice in choices:
            if choice is not None:
                return choice
        return self.default_workflow_timeout


def new_worker_id() -> str:
    """hostname:pid:random, readable in ``lease_owner`` and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(eq=False)
class Runtime:
    """The live parts of an entered engine."""

    store: Store
    settings: Settings
    registry: Registry
    listener: Listener
    make_handle: HandleFactory | None = None
    """Builds the handle of a child run (run id, workflow, parent run id); the client
    that owns this runtime sets it."""
    worker_id: str = field(default_factory=new_worker_id)
    clock_skew: float = 0.0
    """Database clock (``durable.now()``) minus this host's clock, in seconds."""
    telemetry: Telemetry = field(default_factory=Telemetry)
    """Spans, metrics and log binding (``_telemetry``)."""
    hooks: HookDispatcher = field(default_factory=HookDispatcher)
    """The engine's lifecycle hooks and their delivery queue (``_hook_dispatch``)."""
    writer: RecordWriter = field(init=False)
    """Step records of this process's executions, combined under load."""
    starts: RunInserts = field(init=False)
    """Starts made without a caller's connection, combined under load."""
    reader: OutcomeReader = field(init=False)
    """The outcome reads of this client's ``result()`` waiters, combined under load."""
    read_store: Store | None = None
    """The replica's store (``Engine(read_url=...)``), when there is one."""
    _catch_ups: int = field(default=0, init=False, repr=False)
    """How many times ``caught_up`` moved the estimate forward (``sync_clock`` checks)."""

    def __post_init__(self) -> None:
        self.writer = RecordWriter(self.store)
        self.starts = RunInserts(self.store.pool)
        self.reader = OutcomeReader(self.store)

    @property
    def reads(self) -> Store:
        """Where lists, details and the dashboard read: the replica, else the primary."""
        return self.store if self.read_store is None else self.read_store

    def clock(self) -> float:
        """The database clock as an epoch timestamp, estimated without a round trip."""
        return time.time() + self.clock_skew

    def caught_up(self, db_time: datetime) -> None:
        """The database clock read ``db_time`` a moment ago: never estimate it behind that.

        A claim returns its database time; when the database clock moved forward since
        the last ``sync_clock`` (a clock step on its host, a test's shifted clock), the
        estimate would lag it and a run claimed because its timer is due would see the
        timer still ahead, park again and be claimed again, until the next heartbeat."""
        behind = db_time.timestamp() - self.clock()
        if behind > 0:
            self.clock_skew += behind
            self._catch_ups += 1

    async def sync_clock(self) -> None:
        """Measure the database clock's skew (it moves when tests shift ``durable.now()``)."""
        catch_ups, before = self._catch_ups, time.time()
        db_now = await self.store.db_now()
        after = time.time()
        skew = db_now.timestamp() - (before + after) / 2
        # A claim answered meanwhile read the clock after this reading: keep what it saw.
        self.clock_skew = skew if catch_ups == self._catch_ups else max(skew, self.clock_skew)
