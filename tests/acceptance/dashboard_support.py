"""Workflows and helpers shared by the dashboard's HTTP and browser tests.

``serve(app)`` runs a real uvicorn on 127.0.0.1 on a free port inside the test's event
loop; ``csrf_of(html)`` reads the hidden CSRF field a page carries.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn

import durable
from durable import NonRetryableError, step, workflow
from tests.acceptance import support

XSS = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


@step(retries=2, initial_interval=0.01, max_interval=0.01)
async def wobbly(n: int) -> int:
    """Fails its first attempt per run, then succeeds: a retried step."""
    key = support.run_key("wobbly")
    support.CALLS[key] += 1
    if support.CALLS[key] == 1:
        raise ConnectionError("first attempt always fails")
    return n * 2


@step(retries=2, initial_interval=0.01, max_interval=0.01)
async def twice_broken(n: int) -> int:
    """Fails its first two attempts per run (the first with markup), then succeeds."""
    key = support.run_key("twice_broken")
    support.CALLS[key] += 1
    if support.CALLS[key] == 1:
        raise ConnectionError(f"first outage {XSS}")
    if support.CALLS[key] == 2:
        raise TimeoutError("second outage")
    return n


@step
async def explode(reason: str) -> None:
    raise NonRetryableError(f"cannot go on: {reason}")


@workflow(name="dash.order")
async def order(n: int) -> int:
    doubled = await wobbly(n)
    await durable.set_event("progress", {"done": doubled})
    return doubled


@workflow(name="dash.broken")
async def broken(reason: str) -> None:
    await explode(reason)


@workflow(name="dash.approval")
async def approval(note: str) -> str:
    answer: str = await durable.wait_for_signal("approve")
    return f"{note}: {answer}"


@workflow(name="dash.flaky")
async def flaky(n: int) -> int:
    return await twice_broken(n)


@workflow(name="dash.leaf")
async def leaf(n: int) -> int:
    return n + 1


@workflow(name="dash.parent")
async def parent(n: int) -> int:
    return await leaf(n)


WORKFLOWS = [order, broken, approval, leaf, parent, flaky]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found, "the page carries no CSRF field"
    return found.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        await support.wait_until(lambda: server.started, timeout=20, what="uvicorn started")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
