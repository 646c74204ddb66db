"""Inbound webhooks as signals: verify a Standard Webhooks request, then signal a run.

A sender signs each request with ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (HMAC-SHA256 over ``id.timestamp.body`` with a ``whsec_`` base64
secret; see https://www.standardwebhooks.com). Verification is done by the
``standardwebhooks`` package (extra ``durable-sdk[webhooks]``); a timestamp more than five
minutes away from now is refused. The verified JSON body becomes the signal's payload and
the ``webhook-id`` its delivery key, so a sender's retry of the same message is
``duplicate`` and stored once.

Framework-neutral: pass the raw body bytes and the headers, get a ``WebhookOutcome`` with
the HTTP status to answer. ``durable.contrib.fastapi`` mounts it as a route::

    verifier = WebhookVerifier(os.environ["PAYMENTS_WEBHOOK_SECRET"])
    outcome = await deliver_webhook(
        engine, verifier, body, headers, name="paid",
        workflow="checkout", idempotency_key="order-42",
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)

Nothing here logs or echoes a secret, a signature or the body.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from durable._runs.deliveries import SignalDelivery, SignalKind
from durable.errors import PayloadTooLarge, SerializationError

if TYPE_CHECKING:
    from durable._client.client import Client
    from durable._workflow.decorators import Workflow

__all__ = [
    "STATUS_BY_KIND",
    "VerifiedWebhook",
    "WebhookOutcome",
    "WebhookRejected",
    "WebhookVerifier",
    "deliver_verified",
    "deliver_webhook",
]

STATUS_BY_KIND: Mapping[SignalKind, int] = {
    SignalKind.DELIVERED: 202,
    SignalKind.BUFFERED: 202,
    SignalKind.DUPLICATE: 200,
    SignalKind.EXPIRED: 410,
    SignalKind.RUN_FINISHED: 410,
    SignalKind.RUN_NOT_FOUND: 404,
    SignalKind.INVALID_PAYLOAD: 422,
}
"""The HTTP status answered for each ``SignalKind``."""


class WebhookRejected(Exception):
    """A request refused before any signal was stored; ``status_code`` says why (401: not
    signed by a known secret or out of the time window; 400: malformed body)."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """A request whose signature and timestamp checked out, with its parsed JSON body."""

    webhook_id: str
    payload: Any


class WebhookVerifier:
    """Checks Standard Webhooks signatures against one or more secrets (several while a
    secret is being rotated). Secrets are ``whsec_``-prefixed base64 strings or raw bytes;
    they are kept only inside the verifier and never shown by ``repr``."""

    __slots__ = ("_webhooks",)

    def __init__(self, *secrets: str | bytes) -> None:
        if not secrets:
            raise ValueError("WebhookVerifier needs at least one secret")
        try:
            self._webhooks = [Webhook(secret) for secret in secrets]
        except Exception:
            # The library's message may quote the secret: never pass it on.
            raise ValueError("a webhook secret is empty or not valid base64") from None

    def __repr__(self) -> str:
        return f"WebhookVerifier(<{len(self._webhooks)} secret(s)>)"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedWebhook:
        """The verified request; ``WebhookRejected`` (401) when no secret signed it or its
        timestamp is out of the five-minute window, (400) when its body is not JSON."""
        lowered = {key.lower(): value for key, value in headers.items()}
        webhook_id = lowered.get("webhook-id", "")
        if not webhook_id or not all(
            lowered.get(name) for name in ("webhook-timestamp", "webhook-signature")
        ):
            raise WebhookRejected(401, "missing webhook signature headers")
        if not any(self._signed_by(webhook, body, lowered) for webhook in self._webhooks):
            raise WebhookRejected(401, "invalid signature or timestamp")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise WebhookRejected(400, "the body is not valid JSON") from None
        return VerifiedWebhook(webhook_id, payload)

    @staticmethod
    def _signed_by(webhook: Webhook, body: bytes, headers: dict[str, str]) -> bool:
        try:
            webhook.verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error, OverflowError):
            # ValueError covers a non-UTF-8 body and a malformed signature header, which
            # the library does not turn into its own error.
            return False
        return True


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What to answer: ``status_code``, a small JSON ``body``, and the ``delivery`` when
    the request reached ``engine.signal``."""

    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    delivery: SignalDelivery | None = None


async def deliver_webhook(
    engine: Client,
    verifier: WebhookVerifier,
    body: bytes,
    headers: Mapping[str, str],
    *,
    name: str,
    run_id: UUID | str | None = None,
    workflow: Workflow[..., Any] | str | None = None,
    idempotency_key: str | None = None,
    resource_id: str | None = None,
) -> WebhookOutcome:
    """Verify the request, then send signal ``name`` with its JSON body to the run
    ``run_id``, or to the run of ``workflow`` started with ``idempotency_key``. The
    ``webhook-id`` is the signal's delivery key. Refused requests store nothing."""
    try:
        verified = verifier.verify(body, headers)
    except WebhookRejected as exc:
        return WebhookOutcome(exc.status_code, {"error": exc.reason})
    return await deliver_verified(
        engine, verified, name=name, run_id=run_id, workflow=workflow,
        idempotency_key=idempotency_key, resource_id=resource_id,
    )  # fmt: skip


async def deliver_verified(
    engine: Client,
    verified: VerifiedWebhook,
    *,
    name: str,
    run_id: UUID | str | None = None,
    workflow: Workflow[..., Any] | str | None = None,
    idempotency_key: str | None = None,
    resource_id: str | None = None,
) -> WebhookOutcome:
    """``deliver_webhook`` for a request already verified (``WebhookVerifier.verify``)."""
    try:
        if workflow is not None:
            delivery = await engine.signal(
                workflow=workflow, idempotency_key=idempotency_key, name=name,
                payload=verified.payload, delivery_key=verified.webhook_id,
                resource_id=resource_id,
            )  # fmt: skip
        else:
            delivery = await engine.signal(
                run_id, name, verified.payload, delivery_key=verified.webhook_id,
                resource_id=resource_id,
            )  # fmt: skip
    except PayloadTooLarge:
        return WebhookOutcome(413, {"error": "the payload is too large"})
    except SerializationError:
        return WebhookOutcome(422, {"error": "the payload cannot be stored"})
    except (ValueError, TypeError):
        return WebhookOutcome(400, {"error": "invalid signal name, run or key"})
    status = STATUS_BY_KIND[delivery.kind]
    answer: dict[str, Any] = {"kind": str(delivery.kind)}
    if delivery.run_id is not None:
        answer["run_id"] = str(delivery.run_id)
    return WebhookOutcome(status, answer, delivery)
