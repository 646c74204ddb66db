"""``durable migrate --partitioned``: set up the partitioned history layout (migration 0011)."""

from __future__ import annotations

import argparse

import asyncpg

from durable._cli.args import positive
from durable._foundation.durations import to_seconds
from durable._store.partition_statements import partition_history

__all__ = ["add_partition_arguments", "apply_partitioned_layout"]

_MIN_PERIOD = 60.0


def _period(text: str) -> float:
    """A partition period: a duration of at least a minute (``1d``, ``6h``)."""
    try:
        seconds = to_seconds(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < _MIN_PERIOD:
        raise argparse.ArgumentTypeError(f"a partition period is at least 1m, got {text[:80]!r}")
    return seconds


def add_partition_arguments(parser: argparse.ArgumentParser) -> None:
    """The layout options of ``durable migrate``."""
    parser.add_argument("--partitioned", action="store_true",
                        help="partition durable.steps by run id, one partition per period, "
                        "dropped whole by retention (an empty database only)")  # fmt: skip
    parser.add_argument("--partition-period", type=_period, default=86400.0, metavar="DURATION",
                        help="the period each partition covers (default 1d)")  # fmt: skip
    parser.add_argument("--partitions-ahead", type=positive, default=3, metavar="N",
                        help="periods the workers keep created ahead (default 3)")  # fmt: skip


async def apply_partitioned_layout(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    """Switch the migrated database to the partitioned layout when asked; the line to
    print (empty: not asked). ``ValueError`` once it holds runs (nothing changed)."""
    if not args.partitioned:
        return ""
    try:
        switched = await partition_history(conn, args.partition_period, args.partitions_ahead)
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise ValueError(f"{exc}; {exc.hint}") from None
    if not switched:
        return "durable.steps is already partitioned (the settings were left as they are)"
    return (
        f"durable.steps is partitioned: one partition per {args.partition_period:g}s, "
        f"{args.partitions_ahead} period(s) kept ahead by the workers"
    )
