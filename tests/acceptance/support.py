"""Shared pieces of the acceptance tier: body-execution counters, a replay forcer, waits.

Step bodies count their executions in ``CALLS`` (reset before every test by the autouse
fixture in ``conftest.py``), so a test can prove that a recorded step never ran again.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any
from uuid import UUID

import anyio
import asyncpg

import durable
from durable import RunHandle, step

CALLS: Counter[Any] = Counter()
"""Body executions, keyed by whatever each step chooses (usually its name, or (name, run))."""

OBSERVED: list[Any] = []
"""What workflow bodies saw, one entry per execution, for replay comparisons."""

TIMES: list[float] = []
"""Monotonic timestamps recorded by step bodies."""

# Waits longer than this stay out of the worker: the run parks as `sleeping`.
INLINE_WAIT_SECONDS = 0.05
# park_once's retry wait is between half and all of this: always above INLINE_WAIT_SECONDS.
PARK_INTERVAL = 0.4


def reset() -> None:
    CALLS.clear()
    OBSERVED.clear()
    TIMES.clear()


def run_key(name: str) -> tuple[str, UUID]:
    """A per-run counter key, for steps that many runs execute concurrently."""
    return name, durable.current_run().run_id


@step(retries=1, initial_interval=PARK_INTERVAL, max_interval=PARK_INTERVAL)
async def park_once() -> str:
    """Fails its first attempt; the retry backoff exceeds the engine's inline wait, so the
    run parks as ``sleeping`` and its next execution replays everything recorded before."""
    key = run_key("park_once")
    CALLS[key] += 1
    CALLS["park_once"] += 1
    if CALLS[key] == 1:
        raise ConnectionError("transient failure that parks the run")
    return "resumed"


async def wait_for_status(handle: RunHandle[Any], status: str, timeout: float = 5.0) -> None:
    """Poll ``handle.status()`` until it equals ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        current = await handle.status()
        if current == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"run {handle.run_id} stayed {current}, expected {status}")
        await anyio.sleep(0.01)


async def wait_until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll a plain predicate until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.01)


async def count_rows(database_url: str, sql: str, *args: Any) -> int:
    """``SELECT count(*) ...`` on a fresh connection to the test database."""
    conn = await asyncpg.connect(database_url)
    try:
        value: int = await conn.fetchval(sql, *args)
        return value
    finally:
        await conn.close()


async def fetch_row(database_url: str, sql: str, *args: Any) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()
