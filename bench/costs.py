"""What a scenario cost: Python CPU of the agent process and commits on its database.

CPU is ``time.process_time`` over the measured window (every thread of the agent: the
engine, the client side of the scenario and asyncpg). Commits are the ``xact_commit``
delta of the scenario's database in ``pg_stat_database``, read from the ``postgres``
database so the reader adds none; a backend publishes its counts when it exits (or idles a
second), so the counter is read once every connection to the scenario's database has
closed. Reads count too (each is a transaction); polls the scenario makes itself are
subtracted by the caller.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import asyncpg

__all__ = ["Costs", "commits_so_far"]

_OPEN = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
_COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"


async def commits_so_far(url: str) -> int:
    """The database's committed transactions, once no connection to it is open."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(url, database="postgres")
    try:
        with anyio.fail_after(30):
            while await conn.fetchval(_OPEN, name):  # noqa: ASYNC110 (backends exiting)
                await anyio.sleep(0.01)
        count: int = await conn.fetchval(_COMMITS, name)
        return count
    finally:
        await conn.close()


@dataclass
class Costs:
    """CPU and commits of one measured window, per item."""

    url: str
    cpu: float = 0.0
    user: float = 0.0
    """The user-mode part of ``cpu`` (the rest is the kernel's: sockets, scheduling)."""
    commits_before: int = 0
    commits: int = 0

    async def begin(self) -> None:
        self.commits_before = await commits_so_far(self.url)

    def cpu_begin(self) -> None:
        self.cpu = time.process_time()
        self.user = os.times().user

    def cpu_end(self) -> None:
        self.cpu = time.process_time() - self.cpu
        self.user = os.times().user - self.user

    async def end(self, excluded: int = 0) -> None:
        """Read the commits since begin(); ``excluded`` of them were the scenario's own
        polls."""
        after = await commits_so_far(self.url)
        self.commits = after - self.commits_before - excluded

    def note(self, items: int, commit_items: int | None = None) -> str:
        """CPU per item of the timed window and commits per item (of ``commit_items``
        when the commit window held more items than the timed one)."""
        cpu_ms, user_ms = self.cpu * 1000 / items, self.user * 1000 / items
        per = self.commits / (commit_items or items)
        return f"{cpu_ms:.3f} ms CPU/run ({user_ms:.3f} user), {per:.2f} commits/run"
