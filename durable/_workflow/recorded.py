"""Values recorded on first execution and replayed after: ``now``, ``uuid4``, ``random``,
and the ``patched`` marker for changing the code of long-lived runs.

These are synchronous, so their records are kept in memory and written with the run's
next write (a step record, a park). If the worker dies before that, nothing durable
depended on the value yet, so a fresh value on the next attempt is safe.
"""

from __future__ import annotations

import json
import random as _random
import uuid as _uuid
from datetime import UTC, datetime
from typing import Any

from durable._foundation.codec import to_json
from durable._foundation.limits import check_text
from durable._store.record_writer import PendingRecord
from durable._workflow.context import RunContext, current, require, running_step_key

__all__ = ["now", "patched", "random", "uuid4"]


def _recorded(ctx: RunContext, kind: str, make: Any) -> Any:
    ctx.check()
    key, seq, record = ctx.take(kind, "")
    if record is not None:
        return record.output
    value = make()
    ctx.pending.append(PendingRecord(key, seq, kind, "", to_json(value)))
    return value


def now() -> datetime:
    """The current time (UTC, database clock); recorded once, the same on every replay.

    Outside a workflow it is simply the current time; inside a step's body, the database
    clock's current time, not recorded (the step's outcome is what gets recorded).
    """
    ctx = current()
    if ctx is None:
        return datetime.now(UTC)
    if running_step_key():  # part of a step's body: recorded with the step's outcome, if at all
        return datetime.fromtimestamp(ctx.execution.clock(), UTC)
    stamp = _recorded(ctx, "now", ctx.execution.clock)
    return datetime.fromtimestamp(float(stamp), UTC)


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded once and the same on every replay (a fresh one inside a
    step's body or outside a workflow)."""
    ctx = current()
    if ctx is None or running_step_key():
        return _uuid.uuid4()
    return _uuid.UUID(str(_recorded(ctx, "uuid4", lambda: str(_uuid.uuid4()))))


def random() -> float:
    """A random float in [0, 1), recorded once and the same on every replay (a fresh one
    inside a step's body or outside a workflow)."""
    ctx = current()
    if ctx is None or running_step_key():
        return _random.random()
    return float(_recorded(ctx, "random", _random.random))


def patched(patch_id: str) -> bool:
    """True where a run reaches this point with the new code; False for a run that
    already went past it with the old code (it is replaying a history without the patch).

    Use it to change a workflow's code in place without breaking runs in flight::

        if durable.patched("send-sms"):
            await send_sms(user)
    """
    if not patch_id or not isinstance(patch_id, str):
        raise ValueError("patched() needs a non-empty patch id string")
    check_text("the patch id", patch_id)
    ctx = require("durable.patched()")
    ctx.check()
    taken = _patch_taken(ctx, patch_id)
    ctx.patches[patch_id] = taken
    return taken


def _patch_taken(ctx: RunContext, patch_id: str) -> bool:
    upcoming = ctx.peek()
    if upcoming is not None and upcoming.kind == "patch" and upcoming.name == patch_id:
        ctx.take("patch", patch_id)
        return True
    if ctx.replaying:
        return False  # the recorded history went on without this patch
    key, seq, _ = ctx.take("patch", patch_id)
    ctx.pending.append(PendingRecord(key, seq, "patch", patch_id, json.dumps(True)))
    return True
