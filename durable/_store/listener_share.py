"""One LISTEN connection per process and database, shared by the engines that use it.

Several engines in one process (a web app's client engine beside its worker engine, a
test's many engines) that target the same database URL hold one ``Listener``: the first to
start opens it, each adds and later removes its own callbacks, and the last to close closes
it. Listeners are kept per event loop, since an asyncpg connection belongs to the loop that
opened it.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

from durable._store.connecting import connector
from durable._store.listener import Listener

__all__ = ["acquire_listener", "release_listener", "shared_listeners"]


@dataclass
class _Shared:
    listener: Listener
    users: int = 0


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Shared]] = (
    weakref.WeakKeyDictionary()
)


def _here() -> dict[str, _Shared]:
    return _by_loop.setdefault(asyncio.get_running_loop(), {})


async def acquire_listener(url: str) -> Listener:
    """The listener of ``url`` in this process, connected (a bad URL raises here); pair
    every call with ``release_listener``."""
    shared = _here().get(url)
    if shared is None:
        shared = _here()[url] = _Shared(
            Listener(connector(url))
        )  # a multi-host URL: the writable one
    shared.users += 1
    try:
        await shared.listener.start()
    except BaseException:
        await release_listener(shared.listener)
        raise
    return shared.listener


async def release_listener(listener: Listener) -> None:
    """Give back one use of ``listener``; the last use closes its connection."""
    listeners = _here()
    for url, shared in list(listeners.items()):
        if shared.listener is listener:
            shared.users -= 1
            if shared.users > 0:
                return
            del listeners[url]  # before closing: an engine starting now opens a fresh one
            break
    await listener.close()


def shared_listeners() -> int:
    """How many listeners this process's current event loop holds (for tests and health)."""
    return len(_here())
