"""One set of checks for every option and argument a user gives (engine, queues, steps,
workflows, starts, signals, events, listings, the command line).

A wrong type raises ``TypeError``, a value out of range (or not finite) ``ValueError``;
both name the option and the value. Text must be storable by Postgres (no NUL, no lone
surrogate) and within the documented lengths, since an index row has a size limit.
Options are checked where they are given, before anything is stored, so no worker ever
meets a value it cannot use (invariant 8). ``bool`` is not accepted as a number, and a
whole number must be an ``int``: ``concurrency=2.5`` is refused, not rounded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from durable._foundation.durations import to_seconds
from durable._foundation.limits import unstorable_text

__all__ = [
    "MAX_CURSOR_LENGTH",
    "MAX_INT",
    "MAX_JSON_DEPTH",
    "MAX_KEY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PAGE_SIZE",
    "MAX_SECONDS",
    "MAX_TAGS",
    "check_cursor_text",
    "check_delay",
    "check_json_value",
    "check_moment",
    "check_name",
    "check_optional_key",
    "check_optional_name",
    "check_page_size",
    "check_priority",
    "check_run_id",
    "check_tags",
    "check_text",
    "exception_types",
    "name",
    "names",
    "parse_json_argument",
    "queue_limits",
    "real",
    "seconds",
    "seconds_or_none",
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


def seconds_or_none(option: str, value: float | timedelta | str | None) -> float | None:
    """An optional limit: None (no limit), or a duration > 0 as ``seconds`` checks it."""
    return None if value is None else seconds(option, value, positive=True)


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


# -- arguments of starts, signals, events and listings ----------------------------------

MAX_NAME_LENGTH = 255
"""Characters in a workflow, queue, signal, event, schedule name or a tag."""
MAX_KEY_LENGTH = 255
"""Characters in an idempotency key or a concurrency key (they are indexed)."""
MAX_TAGS = 64
"""Tags on one run."""
MAX_PAGE_SIZE = 1000
"""Runs in one page of ``list_runs``."""
MAX_JSON_DEPTH = 64
"""Nesting of a JSON argument given on the command line."""
MAX_CURSOR_LENGTH = 512
"""A page cursor is about 80 characters; anything far longer was not made by durable."""


def check_text(param: str, value: object, *, max_length: int, allow_empty: bool = False) -> str:
    """``value`` as a string Postgres can store (see ``_limits.unstorable_text``), not too
    long."""
    if not isinstance(value, str):
        raise TypeError(f"{param} must be a string, not {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{param} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{param} is {len(value)} characters long; the maximum is {max_length}")
    problem = unstorable_text(value)
    if problem is not None:
        raise ValueError(f"Postgres cannot store {param} {value[:80]!r}: it contains {problem}")
    return value


def check_name(param: str, value: object) -> str:
    """A non-empty name of at most ``MAX_NAME_LENGTH`` characters."""
    return check_text(param, value, max_length=MAX_NAME_LENGTH)


def check_optional_name(param: str, value: object) -> str | None:
    return None if value is None else check_name(param, value)


def check_optional_key(param: str, value: object) -> str | None:
    """An idempotency or concurrency key (or None): at most ``MAX_KEY_LENGTH`` characters."""
    if value is None:
        return None
    return check_text(param, value, max_length=MAX_KEY_LENGTH, allow_empty=True)


def check_tags(tags: object) -> list[str]:
    """A sequence of tag names (a lone string is refused: it is not a list of tags)."""
    if isinstance(tags, str | bytes) or not isinstance(tags, Sequence | set | frozenset):
        raise TypeError(f"tags must be a list of strings, not {type(tags).__name__}")
    out = list(tags)
    if len(out) > MAX_TAGS:
        raise ValueError(f"a run takes at most {MAX_TAGS} tags, not {len(out)}")
    return [check_name("a tag", tag) for tag in out]


def check_priority(value: object) -> int:
    """A run's priority: a Postgres ``integer``."""
    return whole("priority", value, low=-MAX_INT - 1)


def check_page_size(value: object) -> int:
    return whole("limit", value, low=1, high=MAX_PAGE_SIZE)


def check_run_id(param: str, value: object) -> UUID:
    """A ``UUID``, or a string holding one."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{param} must be a UUID or a string, not {type(value).__name__}")
    try:
        return UUID(value)
    except ValueError:
        raise ValueError(f"{param} is not a UUID: {value[:80]!r}") from None


def check_delay(value: object) -> float | None:
    """A start delay in seconds (see ``seconds``), or None."""
    return None if value is None else seconds("delay", value)  # type: ignore[arg-type]


def check_moment(param: str, value: object) -> datetime | None:
    """A ``datetime`` (or None) that converts to UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"{param} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{param} is out of range: {value!r}") from None
    return value


def check_cursor_text(value: object) -> str:
    """A page cursor's text, before it is decoded (see ``_views.decode_cursor``)."""
    if not isinstance(value, str):
        raise TypeError(f"cursor must be a string, not {type(value).__name__}")
    if len(value) > MAX_CURSOR_LENGTH:
        raise ValueError("invalid page cursor: pass back the next_cursor of a page")
    return value


def check_json_value(param: str, value: Any, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A decoded JSON value Postgres's jsonb accepts: finite numbers, text without NUL or
    lone surrogates, nested at most ``max_depth`` deep. Walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"{param} is nested deeper than {max_depth} levels")
        if isinstance(item, str):
            check_text(param, item, max_length=len(item), allow_empty=True)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{param} contains {item}, which JSON cannot store")
        elif isinstance(item, dict):
            for key, inner in item.items():
                check_text(f"a key in {param}", key, max_length=len(key), allow_empty=True)
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
    return value


def parse_json_argument(param: str, text: str) -> Any:
    """Decode a JSON argument (command line) and check it with ``check_json_value``."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{param} contains {constant}, which JSON cannot store")

    try:
        value = json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError(f"{param} is nested too deeply") from None
    return check_json_value(param, value)
