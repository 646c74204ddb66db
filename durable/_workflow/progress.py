"""``durable.set_progress``: a run declares how far it got, recorded like a step.

The fraction and message land on the run's row (``handle.progress()`` and
``RunDetail.progress`` read them without the workflow's code) and the call is recorded
under ``progress#<n>``, so a replay does not write it again.
"""

from __future__ import annotations

import math

from durable._foundation.codec import to_json
from durable._foundation.limits import check_text
from durable._workflow.context import Call, RunContext, require
from durable._workflow.replay import tracked
from durable.errors import LeaseLost

__all__ = ["MAX_PROGRESS_MESSAGE", "set_progress"]

MAX_PROGRESS_MESSAGE = 1000
"""Characters a progress message may hold: a status line, not a payload."""


async def set_progress(fraction: float, message: str | None = None) -> None:
    """Declare the run's progress: ``fraction`` in [0, 1] and an optional short ``message``.

    Call it from workflow code (not inside a step body). Recorded and replay-safe: a
    replay does not store it again. ``handle.progress()`` and ``engine.get_run`` report the
    latest declared value; a completed run reports 1.0.
    """
    _check(fraction, message)
    ctx = require("durable.set_progress()")  # DurableCallInStep inside a step body
    call = ctx.begin("progress", "")
    await tracked(ctx, call, _store, float(fraction), message)


def _check(fraction: float, message: str | None) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise TypeError(f"progress must be a number between 0 and 1, not {fraction!r}")
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"progress must be between 0 and 1, not {fraction!r}")
    if message is not None:
        if not isinstance(message, str):
            raise TypeError(f"a progress message must be a string, not {message!r}")
        if len(message) > MAX_PROGRESS_MESSAGE:
            raise ValueError(
                f"a progress message holds at most {MAX_PROGRESS_MESSAGE} characters, "
                f"not {len(message)}"
            )
        check_text("the progress message", message)


async def _store(ctx: RunContext, call: Call, fraction: float, message: str | None) -> None:
    if call.record is not None:
        return
    ctx.check()
    execution = ctx.execution
    await execution.flush(ctx)
    value = to_json({"fraction": fraction, "message": message})
    stored = await execution.guarded(
        ctx,
        execution.runtime.store.set_progress(
            ctx.run_id, ctx.attempt, fraction, message, call.key, call.seq, value
        ),
    )
    if not stored:
        error = LeaseLost(f"run {ctx.run_id} is no longer held by this worker")
        ctx.fatal = ctx.fatal or error
        raise error
