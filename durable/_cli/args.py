"""argparse types of the ``durable`` command line: each checks one kind of value and turns a
bad one into a usage error (exit status 2) with one clear line, before any database."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from uuid import UUID

from durable._foundation.durations import to_seconds
from durable._foundation.validate import (
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PAGE_SIZE,
    check_cursor_text,
    check_text,
)
from durable._foundation.views import decode_cursor

__all__ = ["cursor", "key", "moment", "name", "page_size", "positive", "run_id", "seconds"]


def positive(text: str) -> int:
    """A positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text[:80]!r}")
    return value


def seconds(text: str) -> float:
    """A duration that is not negative: seconds, or a string like ``90s`` or ``2m``."""
    try:
        value = to_seconds(text) if not text.replace(".", "", 1).isdigit() else float(text)
    except (ValueError, TypeError, OverflowError):
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a duration such as 60 or 2m, got {text[:80]!r}")
    return value


def page_size(text: str) -> int:
    """A page size: a positive integer up to the largest page ``list_runs`` serves."""
    value = positive(text)
    if value > MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"the page size is at most {MAX_PAGE_SIZE}, not {value}")
    return value


def name(text: str) -> str:
    """A workflow, schedule, signal, tag or queue name."""
    try:
        return check_text("a name", text, max_length=MAX_NAME_LENGTH)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def key(text: str) -> str:
    """An idempotency key or a cursor key."""
    try:
        return check_text("a key", text, max_length=MAX_KEY_LENGTH)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cursor(text: str) -> str:
    """A page cursor printed by an earlier ``runs list``."""
    try:
        decode_cursor(check_cursor_text(text))
        return text
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_id(text: str) -> str:
    """A run id, or a prefix of one (hex digits, dashes allowed); a prefix is resolved
    against the database before use, and an ambiguous one is refused there."""
    try:
        return str(UUID(text))
    except ValueError:
        pass
    digits = text.strip().lower().replace("-", "")
    if digits and len(digits) <= 32 and all(c in "0123456789abcdef" for c in digits):
        return text.strip().lower()
    raise argparse.ArgumentTypeError(f"not a run id (a UUID or a prefix of one): {text[:80]!r}")


def moment(text: str) -> datetime:
    """An ISO time (naive: UTC), or an age such as ``12h`` meaning that long ago."""
    try:
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return datetime.now(UTC) - timedelta(seconds=to_seconds(text))
    except (ValueError, TypeError, OverflowError):
        raise argparse.ArgumentTypeError(
            "expected an ISO time (2024-05-01T12:00) or an age (30m, 12h, 7d) within the "
            f"calendar, got {text[:80]!r}"
        ) from None
