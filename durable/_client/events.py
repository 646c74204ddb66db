"""``engine.events(...)`` and ``engine.webhooks``: the event stream and outbound webhook
endpoints, mixed into ``Engine`` (anything with a ``runtime`` can carry them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from durable._client.event_stream import (
    EventFilter,
    StreamEvent,
    check_kinds,
    decode_position,
    encode_position,
    head,
    stream_events,
)
from durable._client.webhooks import Webhooks
from durable._foundation.validate import check_run_id, names, real

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = ["EngineEvents"]


class EngineEvents:
    """The lifecycle event stream and webhook management of an entered engine."""

    if TYPE_CHECKING:

        @property
        def runtime(self) -> Runtime: ...

    def events(
        self,
        *,
        workflow: str | Iterable[str] | None = None,
        run_id: UUID | str | None = None,
        kinds: Iterable[str] | None = None,
        since: str | None = None,
        poll_interval: float = 1.0,
    ) -> AsyncIterator[StreamEvent]:
        """Lifecycle events as they commit, from any process, for ever.

        ``since=None`` starts with events committed once iteration begins; ``since=event.cursor``
        resumes right after that event, so a consumer that stores the cursor of each event
        it has handled sees every later event exactly once. Filter by ``workflow`` (a name
        or names), ``run_id`` and ``kinds`` (``EventKind`` values such as
        ``"run.completed"``). Woken by LISTEN/NOTIFY; ``poll_interval`` bounds the wait
        when a notification is missed (seconds). Events leave with their runs on prune.
        """
        where = EventFilter(
            workflows=None if workflow is None else _workflows(workflow),
            run_id=None if run_id is None else check_run_id("run_id", run_id),
            kinds=check_kinds(kinds),
        )
        wait = real("poll_interval", poll_interval, above=True)
        start = None if since is None else decode_position(since)
        return _stream(self.runtime, start, where, wait)

    async def event_cursor(self) -> str:
        """A cursor from which ``events(since=...)`` yields only events not yet visible to
        any reader: take it before starting the work whose events you want."""
        return encode_position(*await head(self.runtime))

    @property
    def webhooks(self) -> Webhooks:
        """Outbound webhook endpoints: ``add``, ``list``, ``get``, ``remove``, ``enable``,
        ``disable`` and ``deliveries``."""
        return Webhooks(self)  # type: ignore[arg-type]


async def _stream(
    runtime: Runtime, start: tuple[int, int] | None, where: EventFilter, wait: float
) -> AsyncIterator[StreamEvent]:
    position = await head(runtime) if start is None else start
    async for event in stream_events(runtime, position, where, poll_interval=wait):
        yield event


def _workflows(workflow: str | Iterable[str]) -> list[str]:
    if isinstance(workflow, str):
        return list(names("workflow", [workflow]))
    return list(names("workflow", list(workflow)))
