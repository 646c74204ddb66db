"""One set of checks for every option a user gives (engine, queues, steps, workflows).

A wrong type raises ``TypeError``, a value out of range (or not finite) ``ValueError``;
both name the option and the value. Options are checked where they are given, before
anything is stored, so no worker ever meets a value it cannot use (invariant 8). ``bool``
is not accepted as a number, and a whole number must be an ``int``: ``concurrency=2.5``
is refused, not rounded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from durable._durations import to_seconds

__all__ = [
    "MAX_INT",
    "MAX_SECONDS",
    "exception_types",
    "name",
    "names",
    "queue_limits",
    "real",
    "seconds",
    "whole",
]

MAX_INT = 2**31 - 1
"""The largest Postgres ``integer``: counts that are stored must fit in one."""
MAX_SECONDS = 100 * 365 * 86400.0
"""About a century: every Postgres interval and timestamp arithmetic durable does holds it."""


def _shown(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def whole(option: str, value: object, *, low: int = 0, high: int = MAX_INT) -> int:
    """An ``int`` (never a bool or a float) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be a whole number (int), not {_shown(value)}")
    if not low <= value <= high:
        raise ValueError(f"{option} must be between {low} and {high}, not {value}")
    return value


def real(
    option: str,
    value: object,
    *,
    low: float = 0.0,
    above: bool = False,
    high: float = MAX_SECONDS,
) -> float:
    """A finite ``int`` or ``float`` (never a bool) >= ``low`` (> ``low`` when ``above``)
    and <= ``high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{option} must be a number, not {_shown(value)}")
    number = float(value)
    bound = f"> {low:g}" if above else f">= {low:g}"
    if not math.isfinite(number) or number > high or number < low or (above and number == low):
        raise ValueError(f"{option} must be a finite number {bound} and <= {high:g}, not {value}")
    return number


def seconds(option: str, value: float | timedelta | str, *, positive: bool = False) -> float:
    """A duration (seconds, a timedelta or a string such as ``"30s"``), finite, at most
    ``MAX_SECONDS``, and > 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta | str):
        raise TypeError(f"{option} must be a duration, not {_shown(value)}")
    try:
        total = to_seconds(value)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
    if total > MAX_SECONDS or (positive and total <= 0):
        least = "> 0" if positive else ">= 0"
        raise ValueError(f"{option} must be a duration {least}, at most 100 years, not {value!r}")
    return total


def name(option: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a string, not {_shown(value)}")
    if not value:
        raise ValueError(f"{option} must not be empty")
    return value


def names(option: str, values: object) -> tuple[str, ...]:
    """A non-empty sequence (not a single string) of non-empty strings."""
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise TypeError(f"{option} must be a list of names, not {_shown(values)}")
    checked = tuple(name(f"a name in {option}", v) for v in values)
    if not checked:
        raise ValueError(f"{option} must name at least one queue")
    return checked


def exception_types(option: str, value: object) -> tuple[type[BaseException], ...] | None:
    """None, an exception class, or a tuple of them."""
    if value is None:
        return None
    items = (value,) if isinstance(value, type) else value
    if not isinstance(items, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in items
    ):
        raise TypeError(f"{option} must be an exception class or a tuple of them, not {value!r}")
    return items


def queue_limits(
    concurrency: object, rate_limit: object, key_concurrency: object
) -> tuple[int | None, int | None, float | None, int]:
    """A managed queue's limits checked: (concurrency, rate count, rate period, per key).

    The same check runs on ``queues.configure`` and on the row a worker reads, so a row
    written some other way is refused before it reaches a statement."""
    limit = None if concurrency is None else whole("concurrency", concurrency, low=1)
    per_key = whole("key_concurrency", key_concurrency, low=1)
    if rate_limit is None:
        return limit, None, None, per_key
    if not isinstance(rate_limit, tuple | list) or len(rate_limit) != 2:
        raise ValueError(
            f"rate_limit must be a (count, per_seconds) pair such as (10, 60.0), not {rate_limit!r}"
        )
    count = whole("rate_limit count", rate_limit[0], low=1)
    period = real("rate_limit per_seconds", rate_limit[1], above=True)
    return limit, count, period, per_key
