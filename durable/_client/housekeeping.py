"""Housekeeping: deleting one finished run, and the workflows the workers serve.

``EngineHousekeeping`` is mixed into ``Engine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from durable._runs.scoping import check_resource_id, require_in_resource
from durable.errors import RunNotFound

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = ["ClientHousekeeping", "RunNotFinished", "WorkflowInfo"]


class RunNotFinished(ValueError):
    """``engine.delete_run`` of a run that (or a child of which) has not finished."""


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A workflow version some worker registered (``engine.workflows()``)."""

    name: str
    version: int
    queue: str
    registered_at: datetime
    """When a worker first served this version."""
    last_seen_at: datetime
    """When a worker serving it last started."""
    workers: list[str] = field(default_factory=list)
    """Ids (``host:pid:random``) of the live workers serving it now; empty: none."""
    expected_steps: int | None = None


class ClientHousekeeping:
    """``delete_run`` and ``workflows``."""

    if TYPE_CHECKING:

        @property
        def runtime(self) -> Runtime: ...

    async def delete_run(self, run_id: UUID | str, *, resource_id: str | None = None) -> int:
        """Delete a finished run with its child runs and everything recorded about them
        (steps, signals, events); return how many runs were deleted. A run that has not
        finished, or has an unfinished child, raises ``RunNotFinished`` (a ``ValueError``)
        and nothing is deleted: cancel it first. ``RunNotFound`` for an unknown run (or
        one of another resource, with ``resource_id``)."""
        target = UUID(str(run_id))
        await require_in_resource(self.runtime, target, check_resource_id(resource_id))
        row = await self.runtime.store.delete_run(target)
        if row["found"] == 0:
            raise RunNotFound(target)
        if row["unfinished"]:
            raise RunNotFinished(
                f"run {target} has {row['unfinished']} unfinished run(s) in its tree: only "
                "finished runs are deleted (cancel it first)"
            )
        deleted: int = row["deleted"]
        return deleted

    async def workflows(self) -> list[WorkflowInfo]:
        """Every (name, version) a worker has registered, by name and version, with the
        live workers serving it now."""
        rows = await self.runtime.store.list_workflows()
        return [
            WorkflowInfo(
                name=r["name"],
                version=r["version"],
                queue=r["queue"],
                registered_at=r["registered_at"],
                last_seen_at=r["last_seen_at"],
                workers=list(r["workers"]),
                expected_steps=r["expected_steps"],
            )
            for r in rows
        ]
