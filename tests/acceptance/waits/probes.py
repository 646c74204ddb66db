"""Probes for the durable-waits acceptance tests: the database clock, run rows, memory.

``tests/acceptance/support.py`` has the body counters and status polling; these add what
waits need on top: moving ``durable.now()`` for an engine, reading parked runs' rows,
waiting on many runs at once and reading this process's resident memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from durable import Engine, RunHandle, testing


async def shift_clock(engine: Engine, seconds: float) -> None:
    """Move ``durable.now()`` forward for every connection, and tell ``engine`` at once
    (its worker otherwise learns the new offset at its next heartbeat)."""
    await testing.shift_clock(engine, seconds)


async def run_row(database_url: str, run_id: Any) -> asyncpg.Record:
    """The run's row, with ``wake_in``: seconds from ``durable.now()`` to its ``wake_at``."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT *, extract(epoch FROM wake_at - durable.now())::float8 AS wake_in "
            "FROM durable.runs WHERE id = $1",
            run_id,
        )
    finally:
        await conn.close()
    assert row is not None, f"no run {run_id}"
    return row


async def wait_for_all(
    handles: Iterable[RunHandle[Any]], status: str, timeout: float = 5.0
) -> None:
    """Poll until every run in ``handles`` has ``status``."""
    pending = list(handles)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [h for h in pending if await h.status() != status]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} runs never became {status}")
        await anyio.sleep(0.02)


async def children_of(engine: Engine, run_id: Any, count: int, timeout: float = 5.0) -> list[Any]:
    """The child run ids of ``run_id`` once it has ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        children = (await engine.get_run(run_id)).children
        if len(children) >= count:
            return children
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} has {len(children)} children, expected {count}")
        await anyio.sleep(0.02)


def resident_kib() -> int:
    """This process's resident set size (VmRSS) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")
