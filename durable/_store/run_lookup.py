"""Finding runs the way an operator names them: an id prefix, or an idempotency key.

Shared by the command line and the dashboard. A prefix becomes a primary-key range
(``abc`` → ``abc00000-…`` to ``abcfffff-…``), so a lookup stays one index probe however
long the history is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from durable._foundation.views import RunSummary
from durable._store.read_models import summary_from_row
from durable._store.store import Store
from durable.errors import RunNotFound
from durable.sql import query

__all__ = ["AmbiguousRunId", "RunWaits", "find_runs", "id_range", "resolve_run_id", "run_waits"]

_HEX = re.compile(r"[0-9a-f]{1,32}")


class AmbiguousRunId(ValueError):
    """An id prefix matched more than one run; ``matches`` lists some of them."""

    def __init__(self, prefix: str, matches: Sequence[RunSummary]) -> None:
        listed = "\n".join(f"  {m.run_id}  {m.workflow}  {m.status}" for m in matches)
        super().__init__(f"run id prefix {prefix!r} matches several runs:\n{listed}")
        self.prefix = prefix
        self.matches = list(matches)


@dataclass(frozen=True, slots=True)
class RunWaits:
    """What a run waits for and when it wakes: the columns ``RunSummary`` leaves out."""

    run_id: UUID
    waiting_for: list[str]
    wake_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    idempotency_key: str | None
    parent_cursor: str | None
    traceparent: str | None
    now: datetime
    """The database clock when read (``durable.now()``)."""

    @property
    def trace_id(self) -> str | None:
        """The W3C trace id of the run's trace, when it carries one."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def id_range(text: str) -> tuple[UUID, UUID] | None:
    """The (lowest, highest) ids starting with the hex prefix ``text``; None if not hex."""
    digits = text.strip().lower().replace("-", "")
    if not _HEX.fullmatch(digits):
        return None
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))


async def find_runs(
    store: Store, text: str, *, limit: int = 50, by_key: bool = True
) -> list[RunSummary]:
    """Runs whose id starts with ``text``, or (``by_key``) whose idempotency key is it."""
    bounds = id_range(text)
    low, high = bounds if bounds else (None, None)
    key = text if by_key else None
    rows = await store.pool.fetch(query("find_runs"), low, high, key, limit)
    return [summary_from_row(r) for r in rows]  # type: ignore[arg-type]


async def resolve_run_id(store: Store, text: str) -> UUID:
    """The run named by a full id or an unambiguous id prefix.

    ``RunNotFound`` when nothing matches; ``AmbiguousRunId`` (listing up to ten matches)
    when the prefix names several runs; ``ValueError`` when it is not hex at all.
    """
    try:
        return UUID(text)
    except ValueError:
        pass
    if id_range(text) is None:
        raise ValueError(f"not a run id or id prefix (hex digits): {text!r}")
    matches = await find_runs(store, text, limit=10, by_key=False)
    if not matches:
        raise RunNotFound(text)
    if len(matches) > 1:
        raise AmbiguousRunId(text, matches)
    return matches[0].run_id


async def run_waits(store: Store, run_ids: Sequence[UUID]) -> dict[UUID, RunWaits]:
    """Wait state, lease and trace context of each of ``run_ids`` (one primary-key read)."""
    if not run_ids:
        return {}
    rows = await store.pool.fetch(query("run_waits"), list(run_ids))
    return {
        r["id"]: RunWaits(
            run_id=r["id"],
            waiting_for=list(r["waiting_for"] or ()),
            wake_at=r["wake_at"],
            lease_owner=r["lease_owner"],
            lease_expires_at=r["lease_expires_at"],
            idempotency_key=r["idempotency_key"],
            parent_cursor=r["parent_cursor"],
            traceparent=r["traceparent"],
            now=r["now"],
        )
        for r in rows
    }
