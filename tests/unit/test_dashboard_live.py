"""The dashboard's live stream: notifications coalesce, and the feed attaches to a
listener once however many pages subscribe."""

from __future__ import annotations

from uuid import uuid4

import pytest

from durable._store.listener import Listener, Signal
from durable.dashboard._live import ChangeFeed, stream

pytestmark = pytest.mark.anyio

CHANGE = "event: change\ndata: {}\n\n"


async def test_a_burst_of_notifications_is_one_change() -> None:
    signal = Signal()
    events = stream(signal, debounce=0.01)
    assert (await anext(events)).startswith("retry:")
    for _ in range(50):
        signal.set()
    assert await anext(events) == CHANGE
    for _ in range(50):  # while the page re-reads itself
        signal.set()
    assert await anext(events) == CHANGE  # one more, for all fifty
    assert not signal.pending  # nothing else pending
    await events.aclose()


async def test_a_change_waits_for_the_replica_to_settle_first() -> None:
    order: list[str] = []

    async def settle() -> None:
        order.append("settled")

    signal = Signal()
    events = stream(signal, debounce=0.01, settle=settle)
    await anext(events)
    signal.set()
    assert await anext(events) == CHANGE
    assert order == ["settled"]  # before the page was told to re-read
    await events.aclose()


async def test_the_feed_attaches_once_and_wakes_every_page() -> None:
    async def never() -> None:
        raise AssertionError("not connected in this test")

    listener = Listener(never)  # type: ignore[arg-type]
    feed = ChangeFeed()
    pages = [feed.subscribe(listener, None) for _ in range(3)]
    assert len(listener._run_callbacks) == 1
    assert len(listener._wake_callbacks) == 1
    listener._on_notify(None, 0, "durable_run", f"{uuid4()} completed")
    assert all(page.pending for page in pages)
    one = uuid4()
    mine = feed.subscribe(listener, one)
    listener._on_notify(None, 0, "durable_run", f"{uuid4()} step")
    assert not mine.pending
    listener._on_notify(None, 0, "durable_run", f"{one} step")
    assert mine.pending
