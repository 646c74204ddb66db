"""Retention that drops history whole, for the partitioned layout (migration 0011).

With ``durable migrate --partitioned`` the steps of the runs started in one period live in
one partition of ``durable.steps`` (run ids are UUIDv7, so a period is a range of ids).
Every worker keeps the partitions of the coming periods created (``keep_partitions_ahead``)
and pruning drops a partition whole, with the runs of its range, once all of them finished
before the cutoff (``drop_expired_partitions``); a partition that still holds an unfinished
run (or the parent or child of one) stays until it has none. Runs outside every partition
(ids that are not time-ordered) are pruned row by row as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

import anyio

from durable._foundation.faults import is_infrastructure, report_loop_failure
from durable._store.partition_statements import HistoryLayout

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = ["PartitionPrune", "drop_expired_partitions", "keep_partitions_ahead"]

_log = logging.getLogger("durable.history")
_MAX_CHECK_SECONDS = 3600.0
"""Partitions are checked at least hourly, and at least four times per period."""


@dataclass(slots=True)
class PartitionPrune:
    """What one pruning pass did to the partitions."""

    runs_deleted: int = 0
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Partitions past the cutoff that still hold an unfinished or recent run."""
    live_ranges: list[tuple[UUID, UUID]] = field(default_factory=list)
    """The id ranges of every partition left: the row-by-row prune skips them."""


async def drop_expired_partitions(runtime: Runtime, older_than: float) -> PartitionPrune | None:
    """Drop every partition whose runs all finished more than ``older_than`` seconds ago
    (None: the layout is not partitioned)."""
    store = runtime.store
    if await store.history_layout() is None:
        return None
    outcome = PartitionPrune()
    for part in await store.history_partitions(older_than):
        deleted = await store.drop_history_partition(part.name, older_than)
        if deleted is None:
            outcome.kept.append(part.name)
        else:
            outcome.dropped.append(part.name)
            outcome.runs_deleted += deleted
    outcome.live_ranges = [(p.lo, p.hi) for p in await store.history_partitions()]
    if outcome.dropped:
        _log.info("dropped history partitions %s", outcome.dropped)
    if outcome.kept:
        _log.info("kept history partitions %s: a run in each is unfinished", outcome.kept)
    return outcome


async def keep_partitions_ahead(runtime: Runtime) -> None:
    """Keep the partitions of the next periods created, until cancelled; returns as soon
    as it reads that the layout is not partitioned. Never raises (invariant 8): a failed
    pass is logged and tried again (ids of a missing period go to the default partition)."""
    layout: HistoryLayout | None = None
    while True:
        retry_in = 5.0
        try:
            layout = layout or await runtime.store.history_layout()
            if layout is None:
                return
            retry_in = min(_MAX_CHECK_SECONDS, layout.period_seconds / 4)
            made = await runtime.store.ensure_history_partitions(layout.ahead)
            if made:
                _log.info("created %d history partition(s) ahead", made)
        except Exception as exc:  # never ends the worker (invariant 8)
            retry_in = min(retry_in, 5.0) if is_infrastructure(exc) else retry_in
            report_loop_failure(_log, "history partition pass", exc, retry_in)
        await anyio.sleep(retry_in)
