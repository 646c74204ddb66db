"""The LISTEN connection: wakes workers and result waiters.

Engines of one process share it per database (``listener_share``): each adds its
callbacks and removes them when it closes, and each runs ``run()``, of which one at a time
keeps the connection up (the others wait their turn, so it outlives any one engine).

A process hears ``durable_run`` (every run's status and progress) only once something in
it waits on runs: a worker alone hears ``durable_wake``, ``durable_control`` (cancels and
pauses, which stop executions) and ``durable_events``, not the finish of every run.

Notifications are hints, never the source of truth (anyone who can connect can NOTIFY):
every waiter re-reads the database when woken and also polls on a fallback interval, so a
notification lost while the connection was down costs latency, not correctness. The
connection is re-established with backoff, and every waiter is woken once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import anyio
import asyncpg

__all__ = [
    "CONTROL_CHANNEL",
    "EVENTS_CHANNEL",
    "RUN_CHANNEL",
    "WAKE_CHANNEL",
    "Listener",
    "Outcome",
    "Signal",
]

WAKE_CHANNEL = "durable_wake"
RUN_CHANNEL = "durable_run"
CONTROL_CHANNEL = "durable_control"
EVENTS_CHANNEL = "durable_events"
_ALWAYS = (WAKE_CHANNEL, CONTROL_CHANNEL, EVENTS_CHANNEL)
_log = logging.getLogger("durable.listener")
_SWEEP_FLOOR = 1024
"""Subscribed runs kept before the first sweep of abandoned ones."""


Outcome = tuple[str, str | None, str | None]
"""A finished run's (status, output JSON, error JSON), as stored in its row."""


class Signal:
    """A resettable wake-up flag: ``set()`` from callbacks, ``wait()`` from one waiter.

    A future and a timer, not an event under a cancel scope: every ``result()`` waits on
    one, and anyio's event and scope cost about five times as much (docs/performance.md).
    """

    def __init__(self) -> None:
        self._fired = False
        self._waiter: asyncio.Future[None] | None = None
        self.news: str | None = None
        """What the latest notification said (e.g. ``"completed"``): a hint, never a fact."""
        self.outcome: Outcome | None = None
        """Set only by an execution of this process once it committed the run's outcome:
        unlike a notification, nothing outside the process can forge it."""

    @property
    def pending(self) -> bool:
        """True when set() was called since the last wait() returned."""
        return self._fired

    def set(self, news: str | None = None) -> None:
        self.news = news
        self._fired = True
        if self._waiter is not None:
            _wake_up(self._waiter)

    async def wait(self, timeout: float | None) -> bool:
        """Wait for the next set() (or one since the last wait); False on timeout."""
        if not self._fired:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None
            if timeout is not None and not math.isinf(timeout):
                timer = loop.call_later(max(0.0, timeout), _wake_up, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        fired, self._fired = self._fired, False
        return fired


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Listener:
    """LISTENs on durable's channels and fans notifications out to in-process waiters."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        release: Callable[[asyncpg.Connection], Awaitable[Any]] | None = None,
    ) -> None:
        """``connect`` opens the LISTEN connection; ``release`` (when it came from an
        application's pool) gives it back instead of closing it."""
        self._connect = connect
        self._release = release
        self._conn: asyncpg.Connection | None = None
        self._wake_callbacks: list[Callable[[str], None]] = []
        self._run_callbacks: list[Callable[[UUID, str], None]] = []
        self._control_callbacks: list[Callable[[UUID, str], None]] = []
        self._event_callbacks: list[Callable[[str], None]] = []
        # Weak: a subscription dies with the handle that holds it.
        self._watchers: dict[UUID, weakref.WeakSet[Signal]] = {}
        self._sweep_at = _SWEEP_FLOOR
        self._finishing: dict[UUID, int] = {}
        self._lost = anyio.Event()
        self._closed = False
        self._opening = anyio.Lock()
        self._driving = anyio.Lock()
        self.connected = False
        self._runs_wanted = False  # sticky: once anything here waited on runs
        self._runs_heard = False  # LISTENing on durable_run on the current connection
        self._hearing: asyncio.Task[None] | None = None

    def on_wake(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(queue)`` when runs of ``queue`` become due (and after reconnects);
        returns what removes the callback."""
        self._wake_callbacks.append(callback)
        return lambda: _discard(self._wake_callbacks, callback)

    def on_run(self, callback: Callable[[UUID, str], None]) -> Callable[[], None]:
        """Call ``callback(run_id, what)`` on every run notification (status or progress);
        returns what removes the callback."""
        self._run_callbacks.append(callback)
        self._want_runs()
        return lambda: _discard(self._run_callbacks, callback)

    def on_control(self, callback: Callable[[UUID, str], None]) -> Callable[[], None]:
        """Call ``callback(run_id, what)`` when a run is cancelled or paused (a worker then
        stops its execution); returns what removes the callback."""
        self._control_callbacks.append(callback)
        return lambda: _discard(self._control_callbacks, callback)

    def on_events(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(payload)`` on every ``durable_events`` notification (and after
        reconnects, with ``""``); returns the function that removes it."""
        self._event_callbacks.append(callback)
        return lambda: self._event_callbacks.remove(callback)

    def subscribe(self, run_id: UUID) -> Signal:
        """A Signal set whenever ``run_id`` changes (and after reconnects), until
        ``unsubscribe`` (or the caller drops it and the run's next notification comes)."""
        signal = Signal()
        self._watchers.setdefault(run_id, weakref.WeakSet()).add(signal)
        if len(self._watchers) > self._sweep_at:
            self._sweep()
        self._want_runs()
        return signal

    def _sweep(self) -> None:
        """Forget runs whose subscribers all went without unsubscribing (a handle never
        awaited, a closed dashboard page) and whose run sent nothing since: swept when the
        runs kept double, so they cost O(1) per subscription and never pile up."""
        for run_id in [run_id for run_id, watchers in self._watchers.items() if not watchers]:
            del self._watchers[run_id]
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._watchers))

    @property
    def subscriptions(self) -> int:
        """How many runs this process keeps subscriptions for (a diagnostic: it must not
        grow with every run ever awaited)."""
        return len(self._watchers)

    @property
    def hears_runs(self) -> bool:
        """True while run notifications reach this process: a waiter subscribed now misses
        none. Before that, a subscriber is woken once they do and must read the row then."""
        return self._runs_heard and self._conn is not None

    async def hear_runs(self) -> None:
        """Hear run notifications from now on: a waiter that subscribes after this returns
        misses none (when disconnected, the reconnect listens and wakes every waiter)."""
        if self.hears_runs:
            return
        self._runs_wanted = True
        await self._listen_runs()

    def _want_runs(self) -> None:
        if self._runs_wanted:
            return
        self._runs_wanted = True
        if self._conn is not None:  # else _open listens, now that it is wanted
            self._hearing = asyncio.get_running_loop().create_task(self._listen_runs())

    async def _listen_runs(self) -> None:
        async with self._opening:
            conn = self._conn
            if conn is None or self._runs_heard:
                return
            try:
                await conn.add_listener(RUN_CHANNEL, self._on_notify)
            except Exception as exc:  # the connection is going: the reconnect listens
                _log.info("listening for run notifications failed (%s)", exc)
                return
            self._runs_heard = True
        # A change committed before the LISTEN went unheard: every waiter reads again.
        self._wake_watchers()

    @asynccontextmanager
    async def watch(self, run_id: UUID) -> AsyncIterator[Signal]:
        """A Signal set whenever ``run_id`` changes status (and after reconnects). Run
        notifications are heard first (``hear_runs``): a read made inside misses none."""
        await self.hear_runs()
        signal = self.subscribe(run_id)
        try:
            yield signal
        finally:
            self.unsubscribe(run_id, signal)

    def unsubscribe(self, run_id: UUID, signal: Signal) -> None:
        """Stop setting ``signal`` (from ``subscribe``) when ``run_id`` changes."""
        watchers = self._watchers.get(run_id)
        if watchers is not None:
            watchers.discard(signal)
            if not watchers:
                del self._watchers[run_id]

    def begin_finishing(self, run_id: UUID) -> None:
        """Before an execution of this process writes the run's outcome: its waiters may
        wait for the handover (``finished_here``) instead of reading the row. Every call
        is paired with ``end_finishing`` in a ``finally`` (a pair of calls, not a context
        manager: this runs once per run)."""
        self._finishing[run_id] = self._finishing.get(run_id, 0) + 1

    def end_finishing(self, run_id: UUID) -> None:
        """After the write: should it have ended without a handover (claim lost, error,
        cancelled), the waiters are woken to read."""
        left = self._finishing.pop(run_id) - 1
        if left:
            self._finishing[run_id] = left
        for signal in list(self._watchers.get(run_id, ())):
            if signal.outcome is None:
                signal.set()

    def finishing_here(self, run_id: UUID) -> bool:
        """True while an execution of this process writes the run's outcome: its next
        status change is that outcome, handed over in-process (or a wake to read)."""
        return run_id in self._finishing

    def finished_here(self, run_id: UUID, outcome: Outcome) -> None:
        """Hand the outcome an execution of this process has just committed to the
        waiters of ``run_id`` (they then need not read the row)."""
        for signal in list(self._watchers.get(run_id, ())):
            signal.outcome = outcome
            signal.set(outcome[0])

    async def start(self) -> None:
        """Connect unless connected, so that a bad database URL fails the engine's start."""
        await self._open_if_closed()

    async def run(self) -> None:
        """Keep the connection up until close(); reconnect with backoff when it drops.
        Callers sharing the listener take turns: a cancelled one hands over to the next."""
        async with self._driving:
            await self._keep_connected()

    async def _keep_connected(self) -> None:
        delay = 0.1
        while not self._closed:
            if self._conn is None:
                try:
                    if not await self._open_if_closed():
                        continue  # a starting engine opened it meanwhile
                except Exception as exc:  # whatever it is, the listener keeps trying
                    _log.warning("listener reconnect failed (%s); retrying in %.1fs", exc, delay)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.1
                _log.info("listener reconnected")
                self._wake_everyone()
            await self._lost.wait()
            self._lost = anyio.Event()
            await self._drop()

    async def close(self) -> None:
        self._closed = True
        self._lost.set()
        await self._drop()
        if self._hearing is not None:  # it finds no connection now and ends
            await self._hearing

    async def _open_if_closed(self) -> bool:
        """Open the connection unless it is open; True if this call opened it. Locked, so
        engines sharing the listener never open two connections."""
        async with self._opening:
            if self._conn is not None:
                return False
            await self._open()
            return True

    async def _open(self) -> None:
        conn = await self._connect()
        conn.add_termination_listener(self._on_terminated)
        for channel in _ALWAYS:
            await conn.add_listener(channel, self._on_notify)
        self._conn = conn
        if self._runs_wanted:  # read after _conn is set: from then on _want_runs listens
            await conn.add_listener(RUN_CHANNEL, self._on_notify)
            self._runs_heard = True
        self.connected = True

    async def _drop(self) -> None:
        async with self._opening:  # not while _listen_runs adds a channel to it
            conn, self._conn = self._conn, None
            heard, self._runs_heard = self._runs_heard, False
        self.connected = False
        if conn is None:
            return
        if self._release is not None:
            channels = (*_ALWAYS, RUN_CHANNEL) if heard else _ALWAYS
            with anyio.move_on_after(2):
                if not conn.is_closed():  # back to its pool as it came: no callbacks of ours
                    conn.remove_termination_listener(self._on_terminated)
                    for channel in channels:
                        await conn.remove_listener(channel, self._on_notify)
                await self._release(conn)
        elif not conn.is_closed():
            with anyio.move_on_after(2):
                await conn.close()

    def _on_terminated(self, conn: Any) -> None:
        self.connected = False
        if not self._closed:
            _log.warning("listener connection lost; reconnecting")
        self._lost.set()

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        text = str(payload)
        if channel == WAKE_CHANNEL:
            for wake in self._wake_callbacks:
                wake(text)
            return
        if channel == EVENTS_CHANNEL:
            for on_events in list(self._event_callbacks):
                on_events(text)
            return
        run_id, _, what = text.partition(" ")
        try:
            key = UUID(run_id)
        except ValueError:
            return
        if channel == CONTROL_CHANNEL:
            for on_control in self._control_callbacks:
                on_control(key, what)
            return
        watchers = self._watchers.get(key)
        if watchers is not None:
            for signal in list(watchers):
                signal.set(what)
            if not watchers:
                del self._watchers[key]
        for on_run in self._run_callbacks:
            on_run(key, what)

    def _wake_everyone(self) -> None:
        for callback in self._wake_callbacks:
            callback("")
        for on_events in list(self._event_callbacks):
            on_events("")
        self._wake_watchers()

    def _wake_watchers(self) -> None:
        for watchers in list(self._watchers.values()):
            for signal in list(watchers):
                signal.set()


def _discard(callbacks: list[Any], callback: Any) -> None:
    # By identity: two engines may register equal bound methods of distinct objects.
    for i, registered in enumerate(callbacks):
        if registered is callback:
            del callbacks[i]
            return
