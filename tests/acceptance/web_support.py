"""Helpers for the web-framework tests: sign Standard Webhooks requests, talk to an app
in-process (``httpx.ASGITransport``, lifespan entered by hand) or through real uvicorn."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook

from tests.acceptance import support
from tests.acceptance.dashboard_support import free_port

SECRET = "whsec_" + base64.b64encode(b"durable-test-webhook-secret-0001").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-entirely-000000002").decode()


def signed(
    payload: Any = None,
    *,
    msg_id: str = "msg_1",
    secret: str = SECRET,
    at: datetime | None = None,
    raw: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and the headers a Standard Webhooks sender would send with it."""
    body = raw if raw is not None else json.dumps(payload).encode()
    when = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode("utf-8", "surrogateescape"))
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


@asynccontextmanager
async def in_process(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``app`` over ASGI, with the app's lifespan entered around it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``app`` served by a real uvicorn on 127.0.0.1 (lifespan on)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        await support.wait_until(lambda: server.started, timeout=20, what="uvicorn started")
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                yield client
        finally:
            server.should_exit = True


async def signal_rows(database_url: str) -> int:
    """How many signals the test database holds."""
    return await support.count_rows(database_url, "SELECT count(*) FROM durable.signals")
