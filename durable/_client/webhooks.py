"""Outbound webhook endpoints: ``engine.webhooks.add/list/get/remove/enable/disable``.

An endpoint subscribes to event kinds and workflows (none listed: all of them). Each
matching lifecycle event becomes one delivery run of the built-in workflow
``durable.webhook_delivery`` (see ``durable._worker.webhook_delivery``), tagged
``webhook:<endpoint id>``, so ``engine.webhooks.deliveries(...)`` lists them and a final
failure is a failed run.

The signing secret lives only in the endpoint's row. ``add`` returns it once (the
receiver needs it); ``list`` and ``get`` never do, and ``repr`` never shows it.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from durable._client.event_stream import check_kinds
from durable._foundation.validate import check_run_id, check_text, names, real, whole
from durable._foundation.views import Page, RunSummary
from durable.sql import query

if TYPE_CHECKING:
    from durable._client.client import Client

__all__ = [
    "DELIVERY_WORKFLOW",
    "WebhookEndpoint",
    "Webhooks",
    "delivery_tag",
    "new_secret",
    "require_signing",
]

DELIVERY_WORKFLOW = "durable.webhook_delivery"
"""The name of the built-in workflow each delivery is a run of."""


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """An endpoint that receives signed lifecycle events.

    ``secret`` (``whsec_...``) is set only on the value ``add`` returns; it never appears
    in ``repr``.
    """

    id: UUID
    url: str
    kinds: list[str]
    workflows: list[str]
    description: str
    max_attempts: int
    retry_interval: float
    timeout: float
    disabled: bool
    created_at: datetime
    secret: str | None = field(default=None, repr=False)


def new_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def require_signing() -> None:
    """ImportError naming the extra when ``standardwebhooks`` (the signer) is missing."""
    try:
        import standardwebhooks  # noqa: F401
    except ImportError:
        raise ImportError(
            "outbound webhooks sign with the standardwebhooks package: "
            "install durable-sdk[webhooks]"
        ) from None


def delivery_tag(endpoint_id: UUID) -> str:
    """The tag every delivery run to ``endpoint_id`` carries."""
    return f"webhook:{endpoint_id}"


def check_url(url: object) -> str:
    """An absolute http(s) URL with a host; the URL itself never appears in the error."""
    text = check_text("url", url, max_length=2048)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an absolute http:// or https:// URL with a host")
    return text


def check_secret(secret: object) -> str:
    """A Standard Webhooks secret (``whsec_`` + base64); the value is never echoed."""
    if not isinstance(secret, str):
        raise TypeError("secret must be a string")
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body, validate=True)
    except ValueError:
        raise ValueError("secret must be 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("secret must hold at least 16 bytes of key")
    return secret


class Webhooks:
    """Management of outbound webhook endpoints (``engine.webhooks``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def add(
        self,
        url: str,
        *,
        kinds: Iterable[str] | None = None,
        workflows: Iterable[str] | None = None,
        secret: str | None = None,
        description: str = "",
        max_attempts: int = 8,
        retry_interval: float = 5.0,
        timeout: float = 10.0,
    ) -> WebhookEndpoint:
        """Add an endpoint for events of ``kinds`` in ``workflows`` (None: all), committed
        from now on. Each delivery makes up to ``max_attempts`` attempts of ``timeout``
        seconds, waiting ``retry_interval`` seconds before the second and twice as long
        before each next. Without ``secret`` a new one is made. Returns the endpoint with
        its secret (the only time it is returned)."""
        require_signing()
        chosen = new_secret() if secret is None else check_secret(secret)
        row = await self._client.runtime.store.pool.fetchrow(
            query("webhook_add"),
            uuid.uuid4(),
            check_url(url),
            chosen,
            check_kinds(kinds) or [],
            [] if workflows is None else _names("workflows", workflows),
            check_text("description", description, max_length=1000, allow_empty=True),
            whole("max_attempts", max_attempts, low=1, high=100),
            real("retry_interval", retry_interval, high=86400.0),
            real("timeout", timeout, above=True, high=3600.0),
        )
        assert row is not None
        return dataclasses.replace(_endpoint(row), secret=chosen)

    async def list(self) -> list[WebhookEndpoint]:
        """Every endpoint, oldest first (without secrets)."""
        rows = await self._client.runtime.store.pool.fetch(query("webhook_list"))
        return [_endpoint(r) for r in rows]

    async def get(self, endpoint_id: UUID | str) -> WebhookEndpoint | None:
        """One endpoint (without its secret), or None."""
        row = await self._client.runtime.store.pool.fetchrow(
            query("webhook_get"), check_run_id("endpoint_id", endpoint_id)
        )
        return None if row is None else _endpoint(row)

    async def remove(self, endpoint_id: UUID | str) -> bool:
        """Delete an endpoint; False when there was none. Its pending deliveries fail."""
        found = await self._client.runtime.store.pool.fetchrow(
            query("webhook_remove"), check_run_id("endpoint_id", endpoint_id)
        )
        return found is not None

    async def disable(self, endpoint_id: UUID | str) -> bool:
        """Stop starting deliveries to an endpoint; False when there is none."""
        return await self._set_disabled(endpoint_id, True)

    async def enable(self, endpoint_id: UUID | str) -> bool:
        """Start deliveries to a disabled endpoint again; False when there is none."""
        return await self._set_disabled(endpoint_id, False)

    async def deliveries(
        self,
        endpoint_id: UUID | str | None = None,
        *,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[RunSummary]:
        """Delivery runs, newest first: all, or those to one endpoint; ``status="failed"``
        lists the deliveries that gave up."""
        tag = None
        if endpoint_id is not None:
            tag = delivery_tag(check_run_id("endpoint_id", endpoint_id))
        return await self._client.list_runs(
            workflow=DELIVERY_WORKFLOW, tag=tag, status=status, limit=limit, cursor=cursor
        )

    async def _set_disabled(self, endpoint_id: UUID | str, disabled: bool) -> bool:
        found = await self._client.runtime.store.pool.fetchrow(
            query("webhook_set_disabled"), check_run_id("endpoint_id", endpoint_id), disabled
        )
        return found is not None


def _names(option: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{option} must be a list of names, not a string")
    return list(names(option, list(values)))


def _endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"],
        url=row["url"],
        kinds=list(row["kinds"]),
        workflows=list(row["workflows"]),
        description=row["description"],
        max_attempts=row["max_attempts"],
        retry_interval=row["retry_interval"],
        timeout=row["timeout_seconds"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )
