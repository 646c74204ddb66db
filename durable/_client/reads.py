"""Reading runs: get, export, list and count; mixed into ``Engine``.

They read ``runtime.reads``: the replica of ``read_url`` when there is one (see
``_store.replicas``), else the primary. A run the replica does not know yet is looked up
on the primary before it is called not found, so a run just started is never missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from durable._foundation.history import History, read_history
from durable._foundation.validate import (
    check_cursor_text,
    check_moment,
    check_optional_name,
    check_page_size,
    check_run_id,
)
from durable._foundation.views import (
    Page,
    RunDetail,
    RunStatus,
    RunSummary,
    decode_cursor,
    encode_cursor,
)
from durable._runs.scoping import check_resource_id
from durable._workflow.decorators import Workflow
from durable.errors import RunNotFound

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = ["ClientReads"]


class ClientReads:
    """What ``engine.get_run``, ``export_run`` and ``list_runs`` read."""

    if TYPE_CHECKING:

        @property
        def runtime(self) -> Runtime: ...

    async def get_run(self, run_id: UUID | str, *, resource_id: str | None = None) -> RunDetail:
        """Everything recorded about a run: status, input, output, error, steps, children,
        events and signals (read in one snapshot).
        With ``resource_id``, a run of another resource raises ``RunNotFound``."""
        scope = check_resource_id(resource_id)
        target, runtime = UUID(str(run_id)), self.runtime
        detail = await runtime.reads.run_detail(target)
        if detail is None and runtime.reads is not runtime.store:  # too new for the replica?
            detail = await runtime.store.run_detail(target)
        if detail is None or (scope is not None and detail.resource_id != scope):
            raise RunNotFound(run_id)
        return detail

    async def export_run(self, run_id: UUID | str) -> History:
        """The run's history (input, every record, signals, events, children, outcome) in
        the versioned ``durable.history`` format, for ``durable.testing.Replayer``.
        ``history.to_json()`` is what ``durable runs export`` prints."""
        target, runtime = UUID(str(run_id)), self.runtime
        history = await read_history(runtime.reads, target)
        if history is None and runtime.reads is not runtime.store:  # too new for the replica?
            history = await read_history(runtime.store, target)
        if history is None:
            raise RunNotFound(run_id)
        return history

    async def list_runs(
        self,
        workflow: str | Workflow[..., Any] | None = None,
        status: str | RunStatus | Sequence[str | RunStatus] | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        parent: UUID | str | None = None,
        queue: str | None = None,
        resource_id: str | None = None,
        order: str = "desc",
    ) -> Page[RunSummary]:
        """One page of runs, filtered; pass ``next_cursor`` for the next. ``order`` is
        ``"desc"`` (newest first, the default) or ``"asc"`` (oldest first). ``resource_id``
        lists the runs of one resource only (through its own index)."""
        if order not in ("asc", "desc"):
            raise ValueError(f'order must be "asc" or "desc", not {order!r}')
        limit = check_page_size(limit)
        rows = await self.runtime.reads.list_run_summaries(
            **_filters(workflow, status, tag, since, until, parent, queue, resource_id),
            after=None if cursor is None else decode_cursor(check_cursor_text(cursor)),
            limit=limit + 1,
            ascending=order == "asc",
        )
        items = rows[:limit]
        if len(rows) <= limit:
            return Page(items=items, next_cursor=None)
        last = rows[limit - 1]
        return Page(items=items, next_cursor=encode_cursor(last.created_at, last.run_id))

    async def count_runs(
        self,
        workflow: str | Workflow[..., Any] | None = None,
        status: str | RunStatus | Sequence[str | RunStatus] | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        parent: UUID | str | None = None,
        queue: str | None = None,
        resource_id: str | None = None,
    ) -> int:
        """How many runs ``list_runs`` with the same filters would list, over all pages."""
        return await self.runtime.reads.count_runs(
            **_filters(workflow, status, tag, since, until, parent, queue, resource_id)
        )


def _filters(
    workflow: str | Workflow[..., Any] | None,
    status: str | RunStatus | Sequence[str | RunStatus] | None,
    tag: str | None,
    since: datetime | None,
    until: datetime | None,
    parent: UUID | str | None,
    queue: str | None,
    resource_id: str | None,
) -> dict[str, Any]:
    """The store's filter arguments of ``list_runs`` and ``count_runs``, checked."""
    name = workflow.name if isinstance(workflow, Workflow) else workflow
    return {
        "workflow": check_optional_name("workflow", name),
        "statuses": _statuses(status),
        "tag": check_optional_name("tag", tag),
        "since": check_moment("since", since),
        "until": check_moment("until", until),
        "parent": None if parent is None else check_run_id("parent", parent),
        "queue": check_optional_name("queue", queue),
        "resource_id": check_resource_id(resource_id),
    }


def _statuses(status: str | RunStatus | Sequence[str | RunStatus] | None) -> list[str] | None:
    if status is None:
        return None
    values = [status] if isinstance(status, str) else list(status)
    return [RunStatus(v).value for v in values]  # ValueError names an unknown status
