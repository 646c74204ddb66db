"""Acceptance fixtures: engines with the real poller on this test's fresh database.

``make_engine(*workflows, **options)`` builds an ``Engine`` serving exactly ``workflows``
with test-friendly timings (short poll interval, a tiny inline wait so retry backoffs park
the run); enter it with ``async with``. ``engine`` is one such engine, entered, serving the
test module's ``WORKFLOWS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from durable import Engine, Workflow
from tests.acceptance import support

EngineFactory = Callable[..., Engine]

DEFAULTS: dict[str, Any] = {
    "poll_interval": 0.05,
    "lease_seconds": 10.0,  # a loaded CI machine may delay heartbeats
    "inline_wait_seconds": support.INLINE_WAIT_SECONDS,
    "shutdown_grace_seconds": 1.0,
    "concurrency": 8,
}


@pytest.fixture(autouse=True)
def _reset_counters() -> Iterator[None]:
    support.reset()
    yield
    support.reset()


@pytest.fixture
def make_engine(database_url: str) -> EngineFactory:
    def factory(*workflows: Workflow[..., Any], **options: Any) -> Engine:
        return Engine(database_url, workflows=list(workflows), **{**DEFAULTS, **options})

    return factory


@pytest.fixture
async def engine(
    request: pytest.FixtureRequest, make_engine: EngineFactory
) -> AsyncIterator[Engine]:
    workflows = getattr(request.module, "WORKFLOWS", None)
    if workflows is None:
        raise RuntimeError(f"{request.module.__name__} needs a WORKFLOWS list to use `engine`")
    async with make_engine(*workflows) as running:
        yield running
