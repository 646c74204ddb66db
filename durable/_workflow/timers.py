"""Durable timers: ``sleep`` and ``sleep_until``; and ``pause``, a wait for an operator.

The wake time is recorded by the first execution, so a replay keeps the same deadline. A
short wait stays in the worker (holding its lease); a longer one parks the run as
``sleeping`` and frees the slot until the database clock reaches the wake time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from durable._foundation.codec import to_json
from durable._foundation.durations import to_seconds
from durable._foundation.telemetry import EVENT_SLEEP, add_event
from durable._store.record_writer import PendingRecord
from durable._workflow.context import Call, ParkRequest, RunContext, require
from durable._workflow.replay import epoch, tracked

__all__ = ["pause", "sleep", "sleep_until"]


async def sleep(duration: float | timedelta | str) -> None:
    """Sleep durably for ``duration`` (seconds, a timedelta, or a string like ``"3d"``)."""
    seconds = to_seconds(duration)
    ctx = require("durable.sleep()")
    call = ctx.begin("sleep", "")
    await tracked(ctx, call, _sleep, lambda: ctx.execution.clock() + seconds)


async def sleep_until(when: datetime | str) -> None:
    """Sleep durably until ``when``: a timezone-aware datetime or an ISO-8601 string with
    an offset (``"2026-12-01T09:00:00+01:00"``, ``"...Z"``). A past time continues at once.
    A naive time raises ``ValueError``: it would mean a different instant on every host."""
    when = _aware(when)
    ctx = require("durable.sleep_until()")
    call = ctx.begin("sleep", "")
    await tracked(ctx, call, _sleep, when.timestamp)


def _aware(when: datetime | str) -> datetime:
    if isinstance(when, str):
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            raise ValueError(f"sleep_until needs an ISO-8601 time, got {when!r}") from None
        when = parsed
    elif not isinstance(when, datetime):
        raise TypeError(f"sleep_until needs a datetime or an ISO-8601 string, not {when!r}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"sleep_until needs a timezone-aware time (an offset such as +00:00 or Z), got "
            f"{when.isoformat()!r}: a naive time means a different instant on every host"
        )
    return when


async def _sleep(ctx: RunContext, call: Call, wake: object) -> None:
    if call.record is not None:
        wake_at = epoch(call.record.output)
    else:
        assert callable(wake)
        wake_at = float(wake())
        ctx.pending.append(PendingRecord(call.key, call.seq, "sleep", "", to_json(wake_at)))
        add_event(EVENT_SLEEP, {"durable.step.cursor": call.key, "durable.sleep.until": wake_at})
    await ctx.execution.wait_until(ctx, call, wake_at)


async def pause() -> None:
    """Park the run as ``paused`` until ``engine.resume(run_id)`` (or ``engine.fast_forward``)
    lets it go on from here. Recorded: the resumed run replays past it. Holds no slot."""
    ctx = require("durable.pause()")
    call = ctx.begin("pause", "")
    await tracked(ctx, call, _pause)


async def _pause(ctx: RunContext, call: Call) -> None:
    if call.record is not None:
        return  # paused and resumed before
    # The record goes out with the park itself, so the resumed run finds it.
    ctx.pending.append(PendingRecord(call.key, call.seq, "pause", "", to_json(None)))
    await ctx.execution.park(ctx, call, ParkRequest("paused", None))
