"""Run management: retry, fork, pause, resume, fast-forward, prune, health.

``EngineOperations`` is mixed into ``Engine`` and exposes these as engine methods; the
functions here do the work, one short function per operation.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import asyncpg

from durable._client.handles import RunHandle
from durable._foundation.durations import to_seconds
from durable._foundation.run_ids import new_run_id
from durable._foundation.signal_trace import signal_span
from durable._foundation.views import RunStatus
from durable._runs.deliveries import SignalDelivery
from durable._runs.operations import send_signal
from durable._runs.partitions import drop_expired_partitions
from durable._runs.retry_signals import SignalFix, signal_fix
from durable._workflow.run_retries import retry_tree
from durable.errors import RunNotFound

if TYPE_CHECKING:
    from durable._client.client import Client
    from durable._runs.runtime import Runtime

__all__ = [
    "ClientOperations",
    "ForwardKind",
    "ForwardResult",
    "Health",
    "RetryKind",
    "RetryResult",
    "prune_runs",
]

FINISHED = ("completed", "failed", "cancelled")
_PRUNE_BATCH = 500


class RetryKind(enum.StrEnum):
    """What ``engine.retry`` did."""

    QUEUED = "queued"
    """The failed run is pending again and resumes from the step that failed."""
    NOT_FAILED = "not_failed"
    """The run exists but has not failed; nothing changed."""
    MISSING = "missing"
    """No run has that id."""


@dataclass(frozen=True, slots=True)
class RetryResult:
    """The outcome of ``engine.retry``: ``kind``, and the runs that were requeued."""

    kind: RetryKind
    run_id: UUID
    status: RunStatus | None = None
    """The run's status when it was not failed."""
    retried: list[UUID] = field(default_factory=list)
    """The run and its failed child runs retried with it."""


class ForwardKind(enum.StrEnum):
    """What ``engine.fast_forward`` did."""

    WOKEN = "woken"
    """The run's pending sleeps (and retry backoffs) were cut short; it is due now."""
    SIGNALLED = "signalled"
    """The payload was sent to the signal the run waits for (see ``delivery``)."""
    RESUMED = "resumed"
    """The run was paused: it is resumed (and had no sleep or signal to skip)."""
    NOT_WAITING = "not_waiting"
    """The run was neither sleeping nor waiting for a signal; nothing changed."""
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class ForwardResult:
    """The outcome of ``engine.fast_forward``."""

    kind: ForwardKind
    run_id: UUID
    delivery: SignalDelivery | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """``engine.health()``: can this engine reach Postgres, hear it, and work?"""

    database: bool
    """A query to the database succeeded."""
    listener: bool
    """The LISTEN connection (wake-ups, result notifications) is up."""
    worker: bool
    """This engine's worker is claiming runs (False for a client, ``worker=False``)."""
    scheduler: bool
    """This engine's schedule loop is running."""
    ready_runs: int | None
    """Runs due now but not claimed yet (None when the database is unreachable)."""
    error: str | None = None
    """Why the database check failed."""

    @property
    def ok(self) -> bool:
        """Database reachable and listener connected."""
        return self.database and self.listener


# -- retry --------------------------------------------------------------------------------


async def retry_run(runtime: Runtime, run_id: UUID, fix: SignalFix | None = None) -> RetryResult:
    """Requeue a failed run (and its failed children), keeping every recorded result
    but, with ``fix``, the recorded signal it discards or replaces."""
    store = runtime.store
    async with store.transaction() as conn:
        row = await store.lock_for_retry(conn, run_id)
        if row is None:
            return RetryResult(RetryKind.MISSING, run_id)
        if row["status"] != RunStatus.FAILED:
            return RetryResult(RetryKind.NOT_FAILED, run_id, RunStatus(row["status"]))
        if fix is not None:
            await fix.apply(store, conn, run_id)
        retried = await retry_tree(store, conn, run_id, row["error"])
    return RetryResult(RetryKind.QUEUED, run_id, retried=retried)


# -- fork, pause, resume, fast-forward ------------------------------------------------------


async def fork_run(client: Client, run_id: UUID, from_step: str | None) -> RunHandle[Any]:
    """Start a new run of the same workflow and input that reuses the records of
    ``run_id`` before ``from_step`` (None: none) and runs the rest."""
    runtime = client.runtime
    run, steps, _, _ = await runtime.store.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    seqs = {s["cursor_key"]: s["seq"] for s in steps}
    if from_step is not None and from_step not in seqs:
        known = ", ".join(seqs) or "none"
        raise ValueError(
            f"run {run_id} has no record at cursor key {from_step!r}; recorded keys: {known}"
        )
    new_id = new_run_id()
    name, version = run["workflow_name"], run["workflow_version"]
    with runtime.telemetry.start_workflow(name, version, run["queue"], new_id) as started:
        copied = await runtime.store.fork_run(
            run_id, new_id, seqs[from_step] if from_step else 0,
            started.traceparent, started.tracestate,
        )  # fmt: skip
        started.stored(new_id, True)
    if copied is None:
        raise RunNotFound(run_id)
    return RunHandle(client, new_id, runtime.registry.get(name, version))


async def pause_run(runtime: Runtime, run_id: UUID) -> bool:
    """Pause an unfinished run; False when it was already paused or finished."""
    row = await runtime.store.pause_run(run_id)
    if row is None:
        raise RunNotFound(run_id)
    return bool(row["paused"])


async def resume_run(runtime: Runtime, run_id: UUID) -> bool:
    """Resume a paused run; False when it was not paused."""
    if await runtime.store.resume_run(run_id) is not None:
        return True
    if await runtime.store.run_status(run_id) is None:
        raise RunNotFound(run_id)
    return False


async def fast_forward_run(
    runtime: Runtime, run_id: UUID, payload: Any, signal: str | None
) -> ForwardResult:
    """Resume a paused run, then deliver ``payload`` to the signal the run waits for, or
    else cut its sleeps short."""
    state = await runtime.store.run_wait_state(run_id)
    if state is None:
        return ForwardResult(ForwardKind.MISSING, run_id)
    if state["status"] == RunStatus.PAUSED:
        await runtime.store.resume_run(run_id)
        state = await runtime.store.run_wait_state(run_id)
        if state is None:
            return ForwardResult(ForwardKind.MISSING, run_id)
        if state["status"] not in (RunStatus.SLEEPING, RunStatus.WAITING):
            return ForwardResult(ForwardKind.RESUMED, run_id)
    waits = [w[len("signal:") :] for w in state["waiting_for"] or () if w.startswith("signal:")]
    if state["status"] == RunStatus.WAITING and waits:
        name = _which_signal(run_id, waits, signal)
        with signal_span(runtime.telemetry, name, run_id) as sent:
            delivery = await send_signal(runtime, run_id, name, payload, None)
            sent.delivered(delivery.kind, delivery.run_id)
        runtime.telemetry.signal_sent(str(delivery.kind))
        return ForwardResult(ForwardKind.SIGNALLED, run_id, delivery)
    row = await runtime.store.fast_forward_timers(run_id)
    if row is None:
        return ForwardResult(ForwardKind.MISSING, run_id)
    kind = ForwardKind.WOKEN if row["skipped"] else ForwardKind.NOT_WAITING
    return ForwardResult(kind, run_id)


def _which_signal(run_id: UUID, waits: list[str], signal: str | None) -> str:
    if signal is not None:
        if signal not in waits:
            raise ValueError(f"run {run_id} waits for signals {waits}, not {signal!r}")
        return signal
    if len(waits) > 1:
        raise ValueError(f"run {run_id} waits for several signals {waits}; pass signal=")
    return waits[0]


# -- prune and health ---------------------------------------------------------------------


async def prune_runs(
    runtime: Runtime, older_than: float, statuses: Sequence[str] = FINISHED
) -> int:
    """Delete finished top-level runs older than ``older_than`` seconds with their child
    runs, steps, signals and events; unfinished runs are never touched. Returns the
    number of runs deleted. In the partitioned layout, whole partitions go first (see
    ``durable._runs.partitions``) and the runs of the partitions left wait for theirs."""
    chosen = [RunStatus(s).value for s in statuses]
    if not chosen or any(s not in FINISHED for s in chosen):
        raise ValueError(f"prune only deletes finished runs {FINISHED}, not {list(statuses)}")
    if older_than < 0:
        raise ValueError(f"older_than must be >= 0, not {older_than}")
    total, after, skip = 0, None, []
    if set(chosen) == set(FINISHED):  # a partition holds runs of every final status
        partitions = await drop_expired_partitions(runtime, older_than)
        if partitions is not None:
            total, skip = partitions.runs_deleted, partitions.live_ranges
    while True:
        row = await runtime.store.prune_batch(older_than, chosen, after, _PRUNE_BATCH, skip)
        total += int(row["deleted"])
        if row["scanned"] < _PRUNE_BATCH:
            return total
        after = (row["last_at"], row["last_id"])


async def check_health(client: Client, timeout: float) -> Health:
    """Probe the database (bounded by ``timeout``) and report the loops running here."""
    runtime = client.runtime
    ready: int | None = None
    error: str | None = None
    try:
        with anyio.fail_after(timeout):
            ready = await runtime.store.count_due_runs()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    worker, scheduler = client._loops_running()
    return Health(
        database=error is None,
        listener=runtime.listener.connected,
        worker=worker,
        scheduler=scheduler,
        ready_runs=ready,
        error=error,
    )


# -- the Client methods ---------------------------------------------------------------------


class ClientOperations:
    """Operator actions on runs and schedules; mixed into ``Client``."""

    if TYPE_CHECKING:

        @property
        def runtime(self) -> Runtime: ...

    def _loops_running(self) -> tuple[bool, bool]:
        """(worker, scheduler) running in this process; a plain client runs neither."""
        return False, False

    async def retry(
        self,
        run_id: UUID | str,
        *,
        discard_signal: str | None = None,
        replace_signal: tuple[str, Any] | None = None,
    ) -> RetryResult:
        """Resume a failed run from the step that failed, keeping every recorded result
        (earlier steps do not run again). Its failed child runs are retried with it.
        ``kind`` is ``queued``, ``not_failed`` or ``missing``.

        A run that failed on a recorded signal payload (one its wait's type no longer
        accepts) fails again on a plain retry. ``discard_signal=name`` drops the latest
        recorded signal of that name, so the wait is armed again; ``replace_signal=(name,
        payload)`` records ``payload`` in its place. The old signal is kept, ``rejected``.
        ``ValueError`` (nothing changed) when the run recorded no signal of that name."""
        fix = signal_fix(self.runtime, discard_signal, replace_signal)
        return await retry_run(self.runtime, UUID(str(run_id)), fix)

    async def pause(self, run_id: UUID | str) -> bool:
        """Stop claiming the run until ``resume``; a running execution is stopped at its
        next durable call. False when it was already paused or finished."""
        return await pause_run(self.runtime, UUID(str(run_id)))

    async def resume(self, run_id: UUID | str) -> bool:
        """Let a paused run be claimed again, in the status it had. False when not paused."""
        return await resume_run(self.runtime, UUID(str(run_id)))

    async def fast_forward(
        self, run_id: UUID | str, payload: Any = None, *, signal: str | None = None
    ) -> ForwardResult:
        """Skip what a parked run waits for: deliver ``payload`` to the signal it waits for
        (``signal=`` when it waits for several), or else end its current sleep now. A
        paused run is resumed first (``kind`` ``resumed`` when nothing else was skipped)."""
        return await fast_forward_run(self.runtime, UUID(str(run_id)), payload, signal)

    async def prune(
        self,
        older_than: float | timedelta | str,
        statuses: Sequence[str | RunStatus] = FINISHED,
    ) -> int:
        """Delete finished runs (of ``statuses``) that finished longer than ``older_than``
        ago, with their child runs and records. Unfinished runs are never deleted.
        Returns the number of runs deleted."""
        return await prune_runs(self.runtime, to_seconds(older_than), [str(s) for s in statuses])
