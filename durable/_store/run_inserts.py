"""Inserting runs: one start on a caller's connection, or starts combined under load.

A start made on a caller's connection is one ``insert_run`` in the caller's transaction.
Starts made without one go through ``RunInserts`` (a ``Combiner``): a lone start is sent
at once, and starts made in the same turn of the loop, or while one is on the wire, leave
together as one ``insert_runs`` statement (one commit, one wake per queue). Each start
then learns its own outcome: a row that was not inserted (its id or idempotency key
exists) takes the conflict path a lone start takes, so the existing run wins.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from durable._store.pool import ConnectionPool
from durable._store.record_writer import Combiner
from durable.sql import query

__all__ = ["NewRun", "RunInserts", "insert_run"]

Executor = asyncpg.Connection | ConnectionPool


@dataclass(slots=True, eq=False)
class NewRun:
    """Everything stored with a new run. Compared by identity: two starts of one run id
    are two starts, and only one of them creates it. Not changed once built, but not
    frozen: one is built per start, and a frozen dataclass's ``__init__`` costs about five
    times as much."""

    run_id: UUID
    workflow: str
    version: int
    input_json: str
    queue: str
    priority: int = 0
    tags: Sequence[str] = ()
    idempotency_key: str | None = None
    parent_run_id: UUID | None = None
    parent_cursor: str | None = None
    delay_seconds: float | None = None
    timeout_seconds: float | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    depth: int = 0
    concurrency_key: str | None = None
    resource_id: str | None = None
    metadata_json: str | None = None

    def arguments(self) -> tuple[Any, ...]:
        """``insert_run``'s parameters, in order."""
        return (
            self.run_id, self.workflow, self.version, self.input_json, self.queue,
            self.priority, list(self.tags), self.idempotency_key, self.parent_run_id,
            self.parent_cursor, self.delay_seconds, self.timeout_seconds, self.traceparent,
            self.tracestate, self.depth, self.concurrency_key, self.resource_id,
            self.metadata_json,
        )  # fmt: skip


async def insert_run(executor: Executor, run: NewRun) -> tuple[UUID, bool]:
    """Insert one run; (id, created). An existing id or idempotency key wins, unless it
    belongs to another workflow or resource (``ValueError``: never another's handle)."""
    if await _insert_one(executor, run):
        return run.run_id, True
    existing = await _existing(executor, run)
    if existing is None:  # the conflicting row vanished (pruned) between the statements
        raise RuntimeError(f"run {run.run_id} conflicted with a run that no longer exists")
    return existing, False


async def _insert_one(executor: Executor, run: NewRun) -> bool:
    """True when the row was inserted, False when its id or idempotency key exists."""
    return await executor.fetchval(query("insert_run"), *run.arguments()) is not None


async def _existing(executor: Executor, run: NewRun) -> UUID | None:
    """The id of the run ``run`` conflicted with (None: it is gone), checked to be of the
    same workflow and resource."""
    row = await executor.fetchrow(
        query("find_existing_run"), run.run_id, run.workflow, run.idempotency_key
    )
    if row is None:
        return None
    if row["workflow_name"] != run.workflow:
        raise ValueError(
            f"run id {run.run_id} is taken by a run of workflow {row['workflow_name']!r}; "
            f"it cannot start a run of {run.workflow!r}"
        )
    if row["resource_id"] != run.resource_id:
        raise ValueError(
            f"the run id or idempotency key of this {run.workflow!r} start is taken by a run "
            "of another resource"
        )
    found: UUID = row["id"]
    return found


class RunInserts:
    """The starts of one client made without a caller's connection, combined under load."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        # Each start is its own key (NewRun compares by identity): see _insert_many.
        self._combiner: Combiner[NewRun] = Combiner(
            self._insert_one, self._insert_many, _itself, size=_input_bytes
        )

    @property
    def unanswered(self) -> int:
        """Starts accepted and not yet answered (on the wire or queued)."""
        return self._combiner.unanswered

    async def start(self, run: NewRun) -> tuple[UUID, bool]:
        """Insert ``run``, alone or combined with concurrent starts; as ``insert_run``."""
        if await self._combiner.write(run):
            return run.run_id, True
        existing = await _existing(self._pool, run)
        if existing is not None:
            return existing, False
        # Nothing there: the start it lost to was refused, or has been pruned since.
        return await insert_run(self._pool, run)

    async def close(self) -> None:
        """Wait for the combined starts already on the wire."""
        await self._combiner.close()

    async def _insert_one(self, run: NewRun) -> bool:
        return await _insert_one(self._pool, run)

    async def _insert_many(self, runs: Sequence[NewRun]) -> set[Hashable]:
        """Insert ``runs`` in one statement; return the starts whose row was inserted.
        Of two starts of one run id only the first is sent, so the id Postgres returns
        names one start; the other is not inserted and finds the winner."""
        first: dict[UUID, NewRun] = {}
        for run in runs:
            first.setdefault(run.run_id, run)
        sent = list(first.values())
        rows = await self._pool.fetch(query("insert_runs"), *_columns(sent))
        inserted = {row["id"] for row in rows}
        return {run for run in sent if run.run_id in inserted}


def _itself(run: NewRun) -> Hashable:
    return run


def _columns(runs: Sequence[NewRun]) -> tuple[list[Any], ...]:
    """insert_runs' arrays: one entry per run, the tags flattened with each run's slice."""
    tags: list[str] = []
    tags_from: list[int] = []
    tags_to: list[int] = []
    for run in runs:
        tags_from.append(len(tags) + 1)  # Postgres arrays count from 1; slices include both ends
        tags.extend(run.tags)
        tags_to.append(len(tags))
    return (
        [r.run_id for r in runs], [r.workflow for r in runs], [r.version for r in runs],
        [r.input_json for r in runs], [r.queue for r in runs], [r.priority for r in runs],
        tags, tags_from, tags_to, [r.idempotency_key for r in runs],
        [r.parent_run_id for r in runs], [r.parent_cursor for r in runs],
        [r.delay_seconds for r in runs], [r.timeout_seconds for r in runs],
        [r.traceparent for r in runs], [r.tracestate for r in runs], [r.depth for r in runs],
        [r.concurrency_key for r in runs], [r.resource_id for r in runs],
        [r.metadata_json for r in runs],
    )  # fmt: skip


def _input_bytes(run: NewRun) -> int:
    return len(run.input_json) + len(run.metadata_json or "")
