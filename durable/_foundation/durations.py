"""Parsing of user-supplied durations.

A duration is a non-negative, finite number of seconds (``int`` or ``float``),
a non-negative :class:`datetime.timedelta`, or a string such as ``"500ms"``,
``"30s"``, ``"5m"``, ``"2h"``, ``"3d"``, ``"1w"``, ``"1h30m"``, ``"1.5h"`` or
``"2 days 12 hours"``. Parts of a compound string may be separated by spaces
or commas; unit words are case-insensitive and may be singular or plural.
A plain numeric string such as ``"30"`` means seconds.
"""

from __future__ import annotations

import datetime
import math
import re

__all__ = ["format_duration", "parse_duration", "to_seconds"]

_HINT = (
    "use seconds as a number, a timedelta, or a string like "
    "'500ms', '30s', '5m', '2h', '3d', '1w', '2 days 12 hours'"
)

_UNITS: dict[str, datetime.timedelta] = {
    name: unit
    for names, unit in (
        ("ms msec msecs millisecond milliseconds", datetime.timedelta(milliseconds=1)),
        ("s sec secs second seconds", datetime.timedelta(seconds=1)),
        ("m min mins minute minutes", datetime.timedelta(minutes=1)),
        ("h hr hrs hour hours", datetime.timedelta(hours=1)),
        ("d day days", datetime.timedelta(days=1)),
        ("w wk wks week weeks", datetime.timedelta(weeks=1)),
    )
    for name in names.split()
}

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_PART = rf"({_NUMBER})\s*([a-z]+)"
_PART_RE = re.compile(_PART, re.ASCII)
_COMPOUND_RE = re.compile(rf"{_PART}(?:\s*(?:,\s*)?{_PART})*", re.ASCII)
_NUMBER_RE = re.compile(_NUMBER, re.ASCII)


def _invalid(value: object, reason: str = "") -> ValueError:
    detail = f" ({reason})" if reason else ""
    return ValueError(f"invalid duration {value!r}{detail}: {_HINT}")


def _parse_string(value: str) -> datetime.timedelta:
    text = value.strip().lower()
    if _NUMBER_RE.fullmatch(text):
        return datetime.timedelta(seconds=float(text))
    if not _COMPOUND_RE.fullmatch(text):
        raise _invalid(value)
    total = datetime.timedelta()
    for number, unit in _PART_RE.findall(text):
        if unit not in _UNITS:
            raise _invalid(value, f"unknown unit {unit!r}")
        total += _UNITS[unit] * float(number)
    return total


def parse_duration(value: float | int | datetime.timedelta | str) -> datetime.timedelta:
    """Convert a duration given as seconds, a timedelta or a string to a timedelta.

    Raises :class:`ValueError` naming the value for anything that is not a
    non-negative, finite duration in one of the accepted forms.
    """
    try:
        if isinstance(value, datetime.timedelta):
            result = value
        elif isinstance(value, str):
            result = _parse_string(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _invalid(value, "must be finite")
            if value < 0:
                raise _invalid(value, "must not be negative")
            result = datetime.timedelta(seconds=value)
        else:
            raise _invalid(value, f"unsupported type {type(value).__name__}")
    except OverflowError:
        raise _invalid(value, "too large") from None
    if result < datetime.timedelta():
        raise _invalid(value, "must not be negative")
    return result


def to_seconds(value: float | int | datetime.timedelta | str) -> float:
    """Like :func:`parse_duration`, but return the duration in seconds."""
    return parse_duration(value).total_seconds()


def format_duration(seconds: float | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``3h12m``, ``2d04h``; ``-`` when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
