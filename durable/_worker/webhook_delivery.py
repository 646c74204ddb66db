"""The built-in workflow that delivers one event to one webhook endpoint.

A delivery is an ordinary durable run: each attempt is a step (its failure recorded with
the reason), the waits between attempts are durable sleeps, and a worker that dies
mid-attempt leaves the run to another worker, which posts again with the same
``webhook-id`` so the receiver can drop the duplicate. The run's input holds the endpoint
id, never its URL or secret: each attempt reads those from the endpoint's row and signs
with the ``standardwebhooks`` package at the moment it posts (the timestamp is the
attempt's). When every attempt failed, the run fails with ``WebhookDeliveryFailed``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from durable._client.webhooks import DELIVERY_WORKFLOW
from durable._foundation.http_post import DeliveryError, post_json
from durable._workflow.context import current
from durable._workflow.decorators import step, workflow
from durable._workflow.timers import sleep
from durable.errors import NonRetryableError, WebhookDeliveryFailed
from durable.sql import query

__all__ = ["MAX_RETRY_WAIT", "WebhookAttemptFailed", "WebhookEndpointGone", "deliver_webhook"]

MAX_RETRY_WAIT = 3600.0
"""The longest wait between two attempts, in seconds."""


class WebhookAttemptFailed(Exception):
    """One attempt was refused (a non-2xx status) or could not be made."""


class WebhookEndpointGone(NonRetryableError):
    """The endpoint was removed or disabled after the delivery started."""

    code = "webhook_endpoint_gone"


@step(name="durable.webhook_attempt", retries=0)
async def attempt_delivery(endpoint_id: str, webhook_id: str, payload: dict[str, Any]) -> int:
    """Sign ``payload`` and post it to the endpoint once; its 2xx status, or raise."""
    ctx = current()
    if ctx is None:
        raise RuntimeError("a webhook delivery runs only as a durable run")
    row = await ctx.execution.runtime.store.pool.fetchrow(
        query("webhook_target"), UUID(endpoint_id)
    )
    if row is None or row["disabled"]:
        raise WebhookEndpointGone(f"webhook endpoint {endpoint_id} was removed or disabled")
    from standardwebhooks.webhooks import Webhook  # the webhooks extra

    body = json.dumps(payload, separators=(",", ":"))
    sent_at = datetime.now(UTC)
    signature = Webhook(row["secret"]).sign(webhook_id, sent_at, body)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    try:
        status = await post_json(row["url"], headers, body.encode(), row["timeout_seconds"])
    except DeliveryError as exc:
        raise WebhookAttemptFailed(f"endpoint {endpoint_id}: {exc}") from None
    if not 200 <= status < 300:
        raise WebhookAttemptFailed(f"endpoint {endpoint_id} answered HTTP {status}")
    return status


@workflow(name=DELIVERY_WORKFLOW)
async def deliver_webhook(
    endpoint_id: str,
    webhook_id: str,
    payload: dict[str, Any],
    max_attempts: int,
    retry_interval: float,
) -> int:
    """Deliver ``payload`` to the endpoint: up to ``max_attempts`` attempts, waiting
    ``retry_interval`` seconds after the first failure and twice as long after each next."""
    reason = "no attempt made"
    for attempt in range(max_attempts):
        try:
            return await attempt_delivery(endpoint_id, webhook_id, payload)
        except WebhookEndpointGone:
            raise
        except Exception as exc:  # this attempt's failure is recorded on its step
            reason = str(exc)
        if attempt + 1 < max_attempts:
            await sleep(min(retry_interval * 2**attempt, MAX_RETRY_WAIT))
    raise WebhookDeliveryFailed(
        f"webhook {webhook_id} to endpoint {endpoint_id} failed after {max_attempts} "
        f"attempts; the last: {reason}"
    )
