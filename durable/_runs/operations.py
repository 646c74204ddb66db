"""Operations on existing runs: signal, cancel, events and progress waits.

``Engine`` and ``RunHandle`` expose these; they live here so each stays small.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import anyio

from durable._foundation.faults import through_outages
from durable._foundation.limits import check_payload, check_text
from durable._foundation.telemetry import current_traceparent
from durable._foundation.views import RunStatus
from durable._runs.deliveries import (
    SignalDelivery,
    SignalKind,
    check_signal_name,
    encode_payload,
    resolve_type,
    unchecked_note,
)
from durable._runs.runtime import Runtime
from durable._store.store import TRANSIENT_ERRORS
from durable.errors import RunNotFound

__all__ = ["cancel_run", "get_event", "progress_watch", "send_signal", "wait_progress"]

Renew = Callable[[], Awaitable[None]]
_log = logging.getLogger("durable.client")

# A progress watch stays ahead of the clock by this many poll intervals; the waiter
# renews it every poll interval, so a late renewal costs no notification.
_WATCH_POLLS = 3


async def send_signal(
    runtime: Runtime,
    run_id: UUID,
    name: str,
    payload: Any,
    idempotency_key: str | None,
) -> SignalDelivery:
    """Store a signal for a run and wake it if it waits for it; see ``SignalKind``."""
    check_signal_name(name)
    check_text("the signal idempotency key", idempotency_key)
    store = runtime.store
    type_name = await store.signal_wait_type(run_id, name)
    expected = resolve_type(type_name)
    payload_json, invalid = encode_payload(payload, expected)
    limit = runtime.settings.max_signal_bytes
    check_payload(f"the payload of signal {name!r}", payload_json, limit)
    if invalid is not None:
        return SignalDelivery(SignalKind.INVALID_PAYLOAD, run_id, name, invalid)
    # The sender's trace context (the send_signal span): the consuming run links to it.
    traceparent, tracestate = current_traceparent()
    row = await store.send_signal(
        run_id, name, payload_json, idempotency_key, traceparent, tracestate
    )
    if row is None:
        return SignalDelivery(SignalKind.RUN_NOT_FOUND, run_id, name)
    if RunStatus(row["status"]).finished:
        return SignalDelivery(SignalKind.RUN_FINISHED, run_id, name, f"the run {row['status']}")
    if row["seq"] is None:
        return SignalDelivery(SignalKind.DUPLICATE, run_id, name)
    if row["expired"]:
        return SignalDelivery(SignalKind.EXPIRED, run_id, name, "the wait had timed out")
    kind = SignalKind.DELIVERED if row["awaited"] else SignalKind.BUFFERED
    return SignalDelivery(kind, run_id, name, unchecked_note(type_name, expected))


async def cancel_run(runtime: Runtime, run_id: UUID) -> bool:
    """Cancel a run and its unfinished children; False when it had already finished."""
    cancelled = await runtime.store.cancel_runs(run_id)
    for row in cancelled:  # a cancelled run is finished too: durable.runs.finished counts it
        runtime.telemetry.run_cancelled(row["workflow_name"])
    runtime.hooks.run_cancelled(cancelled, runtime.registry)
    if cancelled:
        return True
    if await runtime.store.run_status(run_id) is None:
        raise RunNotFound(run_id)
    return False


async def get_event(runtime: Runtime, run_id: UUID, key: str) -> Any:
    """The latest value the run published under ``key`` (None when never set)."""
    raw = await runtime.store.get_event(run_id, key)
    return None if raw is None else json.loads(raw)


async def wait_progress(
    runtime: Runtime,
    run_id: UUID,
    *,
    step: str | None,
    signal: str | None,
    event: str | None,
    timeout: float | None,
) -> bool:
    """Wait until step ``step`` is recorded, a ``signal`` was consumed or ``event`` is set.

    Returns True when it happened, False when the run finished without it. Woken by
    NOTIFY (the run's step records notify while someone waits, and stop when the last
    waiter leaves), not by busy polling.
    """
    if step is None and signal is None and event is None:
        raise ValueError("wait() needs step=, signal= or event=")
    store = runtime.store
    watching = step is not None or signal is not None  # set_event always notifies
    with anyio.fail_after(timeout):
        async with (
            runtime.listener.watch(run_id) as changed,
            progress_watch(runtime, run_id) if watching else _unwatched() as renew,
        ):
            read = f"reading run {run_id}"
            while True:
                row = await through_outages(
                    lambda: store.run_progress(run_id, step, signal, event), _log, read
                )
                if row is None:
                    raise RunNotFound(run_id)
                if (
                    (step is not None and row["step_done"])
                    or (signal is not None and row["signal_done"])
                    or (event is not None and row["event_set"])
                ):
                    return True
                if RunStatus(row["status"]).finished:
                    return False
                await changed.wait(runtime.settings.poll_interval)
                await renew()


@asynccontextmanager
async def progress_watch(runtime: Runtime, run_id: UUID) -> AsyncIterator[Renew]:
    """While open, the run's step records NOTIFY (``durable_run``, ``<id> step``). Call the
    ``renew()`` it yields at least every poll interval; leaving ends this watch."""
    poll = runtime.settings.poll_interval
    ahead = _WATCH_POLLS * poll
    # Sent again after a dropped connection: a count one too high lapses with watch_until.
    await through_outages(
        lambda: runtime.store.watch_progress(run_id, 1, ahead), _log, f"watching run {run_id}"
    )
    renew_at = runtime.clock() + poll

    async def renew() -> None:
        nonlocal renew_at
        if runtime.clock() >= renew_at:
            # A renewal lost to the database costs notifications, never the wait: it polls.
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await runtime.store.watch_progress(run_id, 0, ahead)
            renew_at = runtime.clock() + poll

    try:
        yield renew
    finally:
        await _unwatch(runtime, run_id)


@asynccontextmanager
async def _unwatched() -> AsyncIterator[Renew]:
    async def renew() -> None:
        return None

    yield renew


async def _unwatch(runtime: Runtime, run_id: UUID) -> None:
    """End this wait's watch, even when cancelled; if the database is unreachable the
    watch lapses by itself (watch_until)."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(*TRANSIENT_ERRORS):
            await runtime.store.watch_progress(run_id, -1, 0.0)
