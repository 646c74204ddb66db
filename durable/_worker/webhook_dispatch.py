"""Turns lifecycle events into webhook delivery runs, in every worker engine.

The dispatch position lives in ``durable.webhook_cursor``. A pass reads the events after
it (below the horizon, like ``engine.events``) joined with the endpoints they match,
starts one delivery run per pair with the idempotency key ``<endpoint>:<position>``, then
moves the position with a compare-and-set. Two workers passing at once start the same
runs (the keys make them one), and a worker that dies between its starts and its move
leaves the position behind, so the next pass starts them again, to the same effect: every
event reaches every matching endpoint once. With no enabled endpoint, a worker only
checks again when an endpoint changes or after its poll interval.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from durable._client.event_stream import encode_position
from durable._client.webhooks import DELIVERY_WORKFLOW, delivery_tag
from durable._store.listener import Signal
from durable._worker.webhook_delivery import deliver_webhook
from durable.sql import query

if TYPE_CHECKING:
    from durable._client.client import Client
    from durable._runs.runtime import Runtime

__all__ = ["WebhookDispatcher"]

_BATCH = 200
_FIRST_RETRY = 0.001
_MAX = (1 << 63) - 1
_log = logging.getLogger("durable.webhooks")


class WebhookDispatcher:
    """The loop that starts delivery runs for new events (one per worker engine)."""

    def __init__(self, runtime: Runtime, client: Client) -> None:
        self._runtime = runtime
        self._client = client
        self._news = Signal()
        self._endpoints_changed = True
        self._enabled = False
        self._held_back = False
        self._progress = False

    def _on_events(self, payload: str) -> None:
        if payload != "event":  # an endpoint changed, or the listener reconnected
            self._endpoints_changed = True
        self._news.set()

    async def run(self) -> None:
        """Dispatch until cancelled; a failing pass is logged and retried later."""
        unsubscribe = self._runtime.listener.on_events(self._on_events)
        retry = _FIRST_RETRY
        try:
            while True:
                busy = False
                try:
                    busy = await self.dispatch()
                except Exception as exc:  # infrastructure never stops the worker
                    _log.warning("webhook dispatch failed (%s); retrying", type(exc).__name__)
                if busy:
                    continue
                if self._progress or not self._held_back:
                    retry = _FIRST_RETRY
                if self._held_back:  # events wait for an older transaction: look again soon
                    await self._news.wait(retry)
                    retry = min(retry * 2, self._runtime.settings.poll_interval)
                    continue
                if not await self._news.wait(self._runtime.settings.poll_interval):
                    self._endpoints_changed = True  # a quiet poll re-checks the endpoints
        finally:
            unsubscribe()

    async def dispatch(self) -> bool:
        """One pass; True when it filled a batch (more may be waiting)."""
        pool = self._runtime.store.pool
        if self._endpoints_changed:
            self._endpoints_changed = False
            self._enabled = bool(await pool.fetchval(query("webhook_any_enabled")))
        if not self._enabled:
            self._held_back = False
            return False
        cursor = await pool.fetchrow(query("webhook_cursor"))
        if cursor is None:
            return False
        start = (cursor["xid"], cursor["seq"])
        rows = await pool.fetch(query("webhook_due"), *start, _BATCH, DELIVERY_WORKFLOW)
        self._held_back = bool(rows[0]["held_back"])
        self._progress = rows[0]["read"] > 0 or not rows[0]["blocked"]
        for row in rows:
            if row["endpoint_id"] is not None:
                await self._start(row)
        full = rows[0]["read"] >= _BATCH
        end = (rows[0]["last_xid"], rows[0]["last_seq"]) if full else (rows[0]["horizon"] - 1, _MAX)
        if end > start:
            await pool.fetchrow(query("webhook_cursor_advance"), *start, *end)
        return bool(full)

    async def _start(self, row: asyncpg.Record) -> None:
        position = encode_position(row["xid"], row["seq"])
        endpoint = row["endpoint_id"]
        await self._client.start(
            deliver_webhook,
            str(endpoint),
            f"msg_{row['xid']}_{row['seq']}",
            _payload(row, position),
            row["max_attempts"],
            row["retry_interval"],
            idempotency_key=f"{endpoint}:{position}",
            tags=[delivery_tag(endpoint)],
        )


def _payload(row: asyncpg.Record, position: str) -> dict[str, Any]:
    """The JSON body: Standard Webhooks' {type, timestamp, data} envelope."""
    data: dict[str, Any] = {
        "cursor": position,
        "run_id": str(row["run_id"]),
        "workflow": row["workflow_name"],
        "attempt": row["attempt"],
    }
    if row["step_key"] is not None:
        data["step"] = row["step_key"]
        data["step_name"] = row["step_name"]
    return {"type": row["kind"], "timestamp": row["at"].isoformat(), "data": data}
