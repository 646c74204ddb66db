"""Durable timers: ``sleep`` and ``sleep_until``.

The wake time is recorded by the first execution, so a replay keeps the same deadline. A
short wait stays in the worker (holding its lease); a longer one parks the run as
``sleeping`` and frees the slot until the database clock reaches the wake time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from durable._codec import to_json
from durable._context import Call, PendingRecord, RunContext, require
from durable._durations import to_seconds
from durable._replay import epoch, tracked
from durable._telemetry import EVENT_SLEEP, add_event

__all__ = ["sleep", "sleep_until"]


async def sleep(duration: float | timedelta | str) -> None:
    """Sleep durably for ``duration`` (seconds, a timedelta, or a string like ``"3d"``)."""
    seconds = to_seconds(duration)
    ctx = require("durable.sleep()")
    call = ctx.begin("sleep", "")
    await tracked(ctx, call, _sleep, lambda: ctx.execution.clock() + seconds)


async def sleep_until(when: datetime) -> None:
    """Sleep durably until ``when`` (timezone-aware; a past time continues at once)."""
    if when.tzinfo is None:
        raise ValueError(f"sleep_until needs a timezone-aware datetime, got {when!r}")
    ctx = require("durable.sleep_until()")
    call = ctx.begin("sleep", "")
    await tracked(ctx, call, _sleep, when.timestamp)


async def _sleep(ctx: RunContext, call: Call, wake: object) -> None:
    if call.record is not None:
        wake_at = epoch(call.record.output)
    else:
        assert callable(wake)
        wake_at = float(wake())
        ctx.pending.append(PendingRecord(call.key, call.seq, "sleep", "", to_json(wake_at)))
        add_event(EVENT_SLEEP, {"durable.step.cursor": call.key, "durable.sleep.until": wake_at})
    await ctx.execution.wait_until(ctx, call, wake_at)
