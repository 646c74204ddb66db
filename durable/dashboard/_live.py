"""Live pages over server-sent events, woken by the engine's own LISTEN connection.

Each open page holds one subscription: a ``Signal`` set by the listener's callbacks
(every run notification and every wake, for the runs pages; the run's own notifications
for a run page). The stream says ``change`` at most once per ``debounce`` seconds, however
many notifications arrive, and the page then re-reads itself once. Nothing polls the
database; a quiet stream sends a comment now and then so proxies keep it open, and a
``change`` after a long silence covers notifications lost while the listener reconnected.
With a read replica, ``settle`` waits (briefly) until it has replayed what the notification
announced, so the page does not re-read a state older than the one that woke it.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

import anyio

from durable._store.listener import Listener, Signal

__all__ = ["ChangeFeed", "stream"]

KEEPALIVE_SECONDS = 15.0
REFRESH_AFTER_QUIET = 4  # keepalives; then one change anyway (a notification may be lost)


class ChangeFeed:
    """Fans the listener's notifications out to open pages; attached once per listener."""

    def __init__(self) -> None:
        self._pages: weakref.WeakSet[Signal] = weakref.WeakSet()
        self._attached: weakref.WeakSet[Listener] = weakref.WeakSet()

    def subscribe(self, listener: Listener, run_id: UUID | None) -> Signal:
        """A Signal for one page: any run's change (None), or ``run_id``'s."""
        if run_id is not None:
            return listener.subscribe(run_id)
        if listener not in self._attached:
            # Listener callbacks cannot be removed: attach once and fan out from here.
            listener.on_run(lambda _run, _what: self._notify())
            listener.on_wake(lambda _queue: self._notify())
            self._attached.add(listener)
        signal = Signal()
        self._pages.add(signal)
        return signal

    def _notify(self) -> None:
        for signal in list(self._pages):
            signal.set()


async def stream(
    signal: Signal, debounce: float, settle: Callable[[], Awaitable[object]] | None = None
) -> AsyncIterator[str]:
    """Server-sent events for one page until the client goes away (the response's task
    is cancelled then)."""
    yield "retry: 3000\n\n"
    quiet = 0
    while True:
        fired = await signal.wait(KEEPALIVE_SECONDS)
        if fired or quiet >= REFRESH_AFTER_QUIET:
            quiet = 0
            if settle is not None:
                await settle()
            yield "event: change\ndata: {}\n\n"
            await anyio.sleep(debounce)  # later notifications coalesce into the next one
        else:
            quiet += 1
            yield ": keepalive\n\n"
