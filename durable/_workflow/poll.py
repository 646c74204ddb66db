"""``durable.poll``: a durable polling loop made of recorded checks and durable sleeps.

Each check runs as a step (recorded, so a replay never runs a past check again), and the
wait between two checks is a ``durable.sleep`` (the run parks and holds no worker slot;
``engine.fast_forward`` ends it early). The deadline is measured on the recorded clock
(``durable.now()``), so every replay takes the same path.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from durable._foundation.validate import seconds_or_none
from durable._workflow.context import require
from durable._workflow.decorators import RetryPolicy, Step
from durable._workflow.recorded import now
from durable._workflow.timers import sleep

__all__ = ["PollResult", "poll"]

T = TypeVar("T")
Duration = float | int | timedelta | str


@dataclass(frozen=True, slots=True)
class PollResult(Generic[T]):
    """What ``durable.poll`` ended with: a value, or the timeout."""

    value: T | None
    """The first value a check returned that was not None (None on a timeout)."""
    timed_out: bool
    """True when ``timeout`` passed with every check returning None."""
    checks: int
    """How many checks ran (the last one included)."""

    @property
    def ok(self) -> bool:
        """True when a check returned a value."""
        return not self.timed_out


async def poll(
    check: Step[[], T] | Callable[[], Awaitable[T | None]],
    *,
    interval: Duration,
    timeout: Duration | None = None,
    name: str | None = None,
) -> PollResult[T]:
    """Run ``check`` every ``interval`` until it returns something other than None, or
    until ``timeout`` (None: no limit) has passed since the first check.

    ``check`` is a ``@step`` taking no arguments, or any async callable, which then runs
    as a step named ``name`` (default: its qualified name) under the default step policy
    (``step_retries``, ``default_step_retries``). Use it inside a
    workflow only: each check is recorded, and between checks the run parks.
    """
    every = seconds_or_none("the poll interval", interval)
    assert every is not None  # interval is required
    limit = seconds_or_none("the poll timeout", timeout)
    require("durable.poll()")
    as_step = _as_step(check, name)
    started = now().timestamp()
    checks = 0
    while True:
        value = await as_step()
        checks += 1
        if value is not None:
            return PollResult(value, False, checks)
        elapsed = now().timestamp() - started
        if limit is not None and elapsed >= limit:
            return PollResult(None, True, checks)
        wait = every if limit is None else min(every, limit - elapsed)
        await sleep(wait)


def _as_step(check: Any, name: str | None) -> Step[[], Any]:
    if isinstance(check, Step):
        return check
    if not callable(check):
        raise TypeError(f"durable.poll() needs a @step or an async callable, not {check!r}")
    label = name or getattr(check, "__qualname__", None)
    if not label:
        raise TypeError(f"durable.poll() cannot name the check {check!r}: pass name=")
    if inspect.iscoroutinefunction(check) and hasattr(check, "__qualname__"):
        return Step(check, name=label, retry=RetryPolicy(), timeout=None, retries_set=False)

    async def run_check() -> Any:
        return await check()

    return Step(run_check, name=label, retry=RetryPolicy(), timeout=None, retries_set=False)
