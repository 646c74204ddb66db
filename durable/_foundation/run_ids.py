"""Run ids: UUIDv7, so that ids sort by the time their run started.

A time-ordered id keeps the primary keys of ``runs`` and ``steps`` append-mostly (new rows
land at the right edge of the index), and lets the partitioned layout range-partition the
per-run tables by ``run_id`` with no extra column: a period of time is a range of ids.
"""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["child_id_of", "new_run_id"]

_MS_BITS = 48
_RAND_A = 0xFFF
_RAND_B = (1 << 62) - 1


def new_run_id(at: float | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562) for a run started at ``at`` (epoch seconds; None: now): a
    48-bit millisecond timestamp, then 74 random bits."""
    ms = int((time.time() if at is None else at) * 1000) & ((1 << _MS_BITS) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    return _v7(ms, rand >> 62, rand)


def child_id_of(parent: uuid.UUID, cursor_key: str) -> uuid.UUID:
    """The deterministic id of the child a run starts at ``cursor_key``. A UUIDv7 parent
    gives a UUIDv7 child with the parent's timestamp (the child sorts, and is partitioned,
    with its parent) and 74 bits of ``uuid5(parent, cursor_key)``; any other parent keeps
    the plain ``uuid5`` its runs were started with."""
    named = uuid.uuid5(parent, cursor_key)
    if parent.version != 7:
        return named
    return _v7(parent.int >> 80, named.int >> 64, named.int)


def _v7(ms: int, rand_a: int, rand_b: int) -> uuid.UUID:
    """Timestamp, version 7, 12 bits of ``rand_a``, variant 10, 62 bits of ``rand_b``."""
    value = (ms << 80) | (0x7 << 76) | (rand_a & _RAND_A) << 64 | (0b10 << 62)
    return uuid.UUID(int=value | (rand_b & _RAND_B))
