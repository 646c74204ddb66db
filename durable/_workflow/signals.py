"""Signals and events: messages into a run, and values published out of it.

A signal sent before its wait is armed is buffered; the first matching wait consumes the
oldest one. Consumption and its record are one statement, so a signal is consumed by
exactly one wait, once. A wait that finds nothing parks the run as ``waiting``; delivery
makes it due in the same transaction that stores the signal.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from pydantic import TypeAdapter, ValidationError

from durable._foundation.codec import encode_error, encode_plain, to_json
from durable._foundation.durations import to_seconds
from durable._foundation.limits import check_payload
from durable._foundation.signal_trace import link_signal
from durable._foundation.telemetry import EVENT_SIGNAL_WAIT, add_event
from durable._foundation.validate import check_name
from durable._runs.deliveries import SignalDelivery, SignalKind, check_signal_name
from durable._workflow.context import Call, ParkRequest, RunContext, require
from durable._workflow.replay import epoch, tracked, write
from durable.errors import LeaseLost, SerializationError, SignalTimeout

__all__ = ["SignalDelivery", "SignalKind", "set_event", "wait_for_signal"]

T = TypeVar("T")
_log = logging.getLogger("durable.signals")
_PEEK = 16  # signals a typed wait checks per round trip


@overload
async def wait_for_signal(
    name: str, *, timeout: float | timedelta | str | None = None, type: None = None
) -> Any: ...
@overload
async def wait_for_signal(
    name: str, *, timeout: float | timedelta | str | None = None, type: type[T]
) -> T: ...
async def wait_for_signal(
    name: str,
    *,
    timeout: float | timedelta | str | None = None,
    type: Any = None,
) -> Any:
    """Wait for ``engine.signal(run_id, name, payload)`` and return its payload.

    The payload is validated against ``type`` when given. Raises ``SignalTimeout`` after
    ``timeout`` (recorded, so a replay raises it at the same point). While it waits the
    run is parked and holds no worker slot.
    """
    check_signal_name(name)
    seconds = None if timeout is None else to_seconds(timeout)
    ctx = require("durable.wait_for_signal()")
    call = ctx.begin("signal", name)
    return await tracked(ctx, call, _wait, name, seconds, type)


async def _wait(ctx: RunContext, call: Call, name: str, seconds: float | None, type_: Any) -> Any:
    record = call.record
    adapter = TypeAdapter(type_) if type_ is not None else None
    if record is not None and record.status == "completed":
        return _decode(adapter, record.output, name)
    if record is not None and record.status == "failed":
        raise SignalTimeout(f"no signal {name!r} arrived before the timeout ({call.key})")
    execution = ctx.execution
    if record is not None:
        deadline = epoch(record.retry_at)
    else:
        deadline = None if seconds is None else execution.clock() + seconds
    deadline_dt = None if deadline is None else datetime.fromtimestamp(deadline, UTC)
    found, payload = await execution.guarded(ctx, _take(ctx, call, name, deadline_dt, adapter))
    if found:
        return _decode(adapter, json.loads(payload) if payload else None, name)
    if deadline is not None and execution.clock() >= deadline:
        error = SignalTimeout(f"no signal {name!r} arrived before the timeout ({call.key})")
        await write(
            ctx, key=call.key, seq=call.seq, kind="signal", name=name, status="failed",
            error_json=to_json(encode_error(error)),
        )  # fmt: skip
        raise error
    if record is None:
        add_event(EVENT_SIGNAL_WAIT, {"durable.step.cursor": call.key, "durable.signal.name": name})
        await write(
            ctx, key=call.key, seq=call.seq, kind="signal", name=name, status="waiting",
            output_json=to_json({"type": _type_name(type_)}),
            retry_in=None if seconds is None else seconds,
        )  # fmt: skip
    return await execution.park(ctx, call, ParkRequest("waiting", deadline, f"signal:{name}"))


async def _take(
    ctx: RunContext,
    call: Call,
    name: str,
    deadline: datetime | None,
    adapter: TypeAdapter[Any] | None,
) -> tuple[bool, str | None]:
    """Consume the oldest signal whose payload fits the wait's type: (found, payload).

    Whoever sent it, a payload that does not fit is rejected (kept unconsumed with the
    reason, logged) instead of being recorded: recording it would fail every replay.
    """
    store = ctx.execution.runtime.store

    async def consume(*args: Any) -> tuple[bool, str | None]:
        taken = await store.consume_signal(*args)
        if taken.found:  # the run span links to the span that sent the signal
            link_signal(taken.traceparent, taken.tracestate, name, call.key)
        return taken.found, taken.payload

    if adapter is None:
        return await consume(ctx.run_id, ctx.attempt, name, call.key, call.seq, deadline)
    tried: set[int] = set()
    while True:
        pending = await store.pending_signals(ctx.run_id, name, deadline, _PEEK)
        rejected: list[tuple[int, str]] = []
        chosen: int | None = None
        for seq, payload in pending:
            reason = _mismatch(adapter, json.loads(payload) if payload else None)
            if reason is None:
                chosen = seq
                break
            rejected.append((seq, reason))
        if rejected:
            if not await store.reject_signals(ctx.run_id, ctx.attempt, name, rejected):
                return False, None  # the claim is lost: the next write finds out
            for bad, reason in rejected:
                _log.warning(
                    "run %s: signal %r (seq %d) rejected by the wait at %s, left unconsumed: %s",
                    ctx.run_id, name, bad, call.key, reason,
                )  # fmt: skip
        if chosen is not None and chosen not in tried:
            tried.add(chosen)
            found, payload = await consume(
                ctx.run_id, ctx.attempt, name, call.key, call.seq, deadline, chosen
            )
            if found:
                return found, payload
            continue  # a parallel wait took it: look again (twice the same: the claim is lost)
        if chosen is not None or len(pending) < _PEEK:
            return False, None


def _mismatch(adapter: TypeAdapter[Any], value: Any) -> str | None:
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        return f"the payload does not match the wait's type: {exc}"
    return None


def _decode(adapter: TypeAdapter[Any] | None, value: Any, name: str) -> Any:
    if adapter is None:
        return value
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise SerializationError(
            f"the recorded payload of signal {name!r} does not match its type: {exc}. "
            f"engine.retry(run_id, discard_signal={name!r}) or replace_signal= fixes the run"
        ) from exc


def _type_name(type_: Any) -> str | None:
    if isinstance(type_, type):
        return f"{type_.__module__}.{type_.__qualname__}"
    # A generic alias (list[int], Literal[...]) has no importable name: recorded for
    # people and senders to see, never resolved.
    return None if type_ is None else repr(type_)


async def set_event(key: str, value: Any) -> None:
    """Publish ``value`` under ``key`` for ``handle.get_event(key)`` and ``handle.wait(event=)``.

    Recorded like a step: a replay does not publish again. A value whose JSON is over
    the engine's ``max_output_bytes`` raises ``PayloadTooLarge`` and publishes nothing.
    """
    check_name("event key", key)
    ctx = require("durable.set_event()")
    value_json = to_json(encode_plain(value, f"event {key!r}"), f"event {key!r}")
    limit = ctx.execution.runtime.settings.max_output_bytes  # the cap of step outputs
    check_payload(f"the value of event {key!r}", value_json, limit)
    call = ctx.begin("event", key)
    await tracked(ctx, call, _set_event, key, value_json)


async def _set_event(ctx: RunContext, call: Call, key: str, value_json: str) -> None:
    if call.record is not None:
        return
    ctx.check()
    execution = ctx.execution
    await execution.flush(ctx)
    stored = await execution.guarded(
        ctx,
        execution.runtime.store.set_event(
            ctx.run_id, ctx.attempt, key, value_json, call.key, call.seq
        ),
    )
    if not stored:
        error = LeaseLost(f"run {ctx.run_id} is no longer held by this worker")
        ctx.fatal = ctx.fatal or error
        raise error
