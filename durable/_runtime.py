"""What an entered engine shares with its worker and executions: settings, store, clock."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from durable._record_writer import RecordWriter
from durable._registry import Registry
from durable._store import Store
from durable._telemetry import Telemetry

if TYPE_CHECKING:
    from durable._listener import Listener

__all__ = ["Runtime", "Settings", "new_worker_id"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Engine tuning options, validated once."""

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

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {self.concurrency}")
        if self.lease_seconds <= 0 or self.poll_interval <= 0:
            raise ValueError("lease_seconds and poll_interval must be > 0")
        if not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be > 0 and shorter than "
                f"lease_seconds ({self.lease_seconds}), or leases expire between heartbeats"
            )
        if self.inline_wait_seconds < 0 or self.shutdown_grace_seconds < 0:
            raise ValueError("inline_wait_seconds and shutdown_grace_seconds must be >= 0")
        if not self.queues:
            raise ValueError("a worker needs at least one queue")
        caps = (self.max_input_bytes, self.max_output_bytes, self.max_signal_bytes)
        if min(caps) < 1:
            raise ValueError(f"payload caps must be >= 1 byte, got {caps}")
        if self.retention_seconds is not None and self.retention_seconds <= 0:
            raise ValueError(f"retention must be a positive duration, not {self.retention_seconds}")


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
    engine: Any = None
    """The Engine this runtime belongs to (handles to child runs need it)."""
    worker_id: str = field(default_factory=new_worker_id)
    clock_skew: float = 0.0
    """Database clock (``durable.now()``) minus this host's clock, in seconds."""
    telemetry: Telemetry = field(default_factory=Telemetry)
    """Spans, metrics and log binding (``_telemetry``)."""
    writer: RecordWriter = field(init=False)
    """Step records of this process's executions, combined under load."""

    def __post_init__(self) -> None:
        self.writer = RecordWriter(self.store)

    def clock(self) -> float:
        """The database clock as an epoch timestamp, estimated without a round trip."""
        return time.time() + self.clock_skew

    async def sync_clock(self) -> None:
        """Measure the database clock's skew (it moves when tests shift ``durable.now()``)."""
        before = time.time()
        db_now = await self.store.db_now()
        after = time.time()
        self.clock_skew = db_now.timestamp() - (before + after) / 2
