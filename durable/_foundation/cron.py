"""Cron expressions, time zones and schedule policies: validation and tick arithmetic.

Pure logic with no database: ``CronSpec`` validates an expression and a time zone once
(at definition time) and computes ticks in that zone, so ``0 2 * * *`` in
``Europe/Paris`` fires at 02:00 Paris time across daylight-saving changes. ``plan_ticks``
decides, for one due schedule, which ticks start a run under its overlap and catch-up
policies.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from durable.errors import InvalidSchedule

__all__ = [
    "CatchUp",
    "CronSpec",
    "Overlap",
    "Plan",
    "check_policies",
    "check_scheduled_workflow",
    "plan_ticks",
]

Overlap = Literal["skip", "allow", "buffer_one"]
"""What a tick does while the schedule's previous run is unfinished."""
CatchUp = Literal["skip_missed", "run_missed"]
"""What happens to ticks missed while no worker was running."""

_TINY = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A validated cron expression in a time zone; raises ``InvalidSchedule`` when not."""

    cron: str
    timezone: str = "UTC"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_cron(self.cron)
        object.__setattr__(self, "zone", _zone(self.timezone))

    def next_after(self, when: datetime) -> datetime:
        """The first tick strictly after ``when``, in UTC."""
        tick: datetime = croniter(self.cron, when.astimezone(self.zone)).get_next(datetime)
        return tick.astimezone(UTC)

    def due_ticks(self, since: datetime, now: datetime, limit: int) -> list[datetime]:
        """Up to ``limit`` of the latest ticks in ``[since, now]``, oldest first, in UTC."""
        it = croniter(self.cron, (now + _TINY).astimezone(self.zone))
        ticks: list[datetime] = []
        while len(ticks) < limit:
            tick: datetime = it.get_prev(datetime)
            if tick < since:
                break
            ticks.append(tick.astimezone(UTC))
        ticks.reverse()
        return ticks


def _check_cron(expression: str) -> None:
    reason = "not a string"
    if isinstance(expression, str):
        try:
            croniter(expression)
            return
        except (CroniterError, ValueError, KeyError) as exc:
            reason = str(exc)
    raise InvalidSchedule(
        f"invalid cron expression {expression!r} ({reason}): expected 5 fields "
        "'minute hour day-of-month month day-of-week' such as '0 2 * * *', or 6 with "
        "seconds last"
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidSchedule(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from exc


def check_policies(overlap: str, catch_up: str, max_catch_up: int, jitter: float) -> None:
    """Raise ``InvalidSchedule`` for an unknown policy or an out-of-range bound."""
    if overlap not in get_args(Overlap):
        raise InvalidSchedule(f"overlap must be one of {get_args(Overlap)}, not {overlap!r}")
    if catch_up not in get_args(CatchUp):
        raise InvalidSchedule(f"catch_up must be one of {get_args(CatchUp)}, not {catch_up!r}")
    if isinstance(max_catch_up, bool) or not isinstance(max_catch_up, int) or max_catch_up < 1:
        raise InvalidSchedule(f"max_catch_up must be an integer >= 1, not {max_catch_up!r}")
    if not math.isfinite(jitter) or jitter < 0:
        raise InvalidSchedule(f"jitter must be a finite duration >= 0, not {jitter!r}")


def check_scheduled_workflow(fn: Callable[..., Any], cron: str, timezone: str) -> CronSpec:
    """Validate ``@workflow(schedule=..., timezone=...)``: the expression, the zone, and
    that the workflow can be started without arguments (a tick passes none)."""
    spec = CronSpec(cron, timezone)
    try:
        inspect.signature(fn).bind()
    except TypeError as exc:
        raise InvalidSchedule(
            f"scheduled workflow {fn.__qualname__} must accept no arguments (a tick passes "
            f"none): {exc}; use engine.schedules.create(..., args=...) to pass some"
        ) from exc
    return spec


@dataclass(frozen=True, slots=True)
class Plan:
    """What one pass does to a due schedule."""

    starts: list[datetime]
    """Ticks that start a run now, oldest first."""
    buffered_at: datetime | None
    """The tick held back by ``buffer_one`` (None: nothing held)."""
    next_fire_at: datetime
    skipped: int
    """Due ticks that started nothing (missed, or overlapping a running run)."""


def plan_ticks(
    spec: CronSpec,
    *,
    now: datetime,
    next_fire_at: datetime | None,
    buffered_at: datetime | None,
    busy: bool,
    overlap: str,
    catch_up: str,
    max_catch_up: int,
) -> Plan:
    """Decide which due ticks start runs; ``busy``: the previous run is unfinished.

    ``skip_missed`` runs only the latest due tick; ``run_missed`` runs the latest
    ``max_catch_up`` ticks, oldest first. A held tick (``buffer_one``) starts first, as
    soon as the previous run has finished.
    """
    ticks: list[datetime] = []
    new_next = next_fire_at if next_fire_at is not None else spec.next_after(now)
    if next_fire_at is not None and next_fire_at <= now:
        limit = 1 if catch_up == "skip_missed" else max_catch_up
        ticks = spec.due_ticks(next_fire_at, now, limit)
        new_next = spec.next_after(now)
    starts: list[datetime] = []
    if buffered_at is not None and not busy:
        starts.append(buffered_at)
        buffered_at, busy = None, True
    for tick in ticks:
        if not busy or overlap == "allow":
            starts.append(tick)
            busy = True
        elif overlap == "buffer_one" and buffered_at is None:
            buffered_at = tick
    missed = _count_missed(spec, next_fire_at, now, ticks)
    held = sum(1 for tick in ticks if tick == buffered_at)
    return Plan(starts, buffered_at, new_next, missed + len(ticks) - len(starts) - held)


def _count_missed(
    spec: CronSpec, since: datetime | None, now: datetime, kept: list[datetime]
) -> int:
    """Due ticks dropped by the catch-up bound (counted up to 1000, for the log)."""
    if since is None or since > now or not kept:
        return 0
    return max(0, len(spec.due_ticks(since, now, 1000)) - len(kept))
