"""Outbound webhooks: lifecycle events delivered as signed requests by durable runs of the
built-in delivery workflow, to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from standardwebhooks.webhooks import Webhook

import durable
from durable import Engine, RunHandle, step, workflow
from durable._client.webhooks import DELIVERY_WORKFLOW
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.webhook_receiver import receiver

pytestmark = pytest.mark.anyio


@step
async def wh_charge(order: str) -> str:
    return f"charged {order}"


@workflow(name="webhooks.checkout")
async def checkout(order: str) -> str:
    return await wh_charge(order)


@workflow(name="webhooks.other")
async def other() -> str:
    return "other"


async def only_delivery(engine: Engine) -> RunHandle[Any]:
    """The one delivery run, once it exists."""
    while True:
        page = await engine.list_runs(workflow=DELIVERY_WORKFLOW)
        if page.items:
            assert len(page.items) == 1, page.items
            return engine.handle(page.items[0].run_id)
        await anyio.sleep(0.02)


async def test_fails_twice_then_accepts_with_one_id_and_a_valid_signature(
    make_engine: EngineFactory,
) -> None:
    async with receiver(500, 503, 204) as rec, make_engine(checkout, other) as engine:
        endpoint = await engine.webhooks.add(
            rec.url, kinds=["run.completed"], workflows=["webhooks.checkout"],
            retry_interval=0.1,
        )  # fmt: skip
        await (await engine.start(other)).result(timeout=30)  # not subscribed
        handle = await engine.start(checkout, "o-1")
        await handle.result(timeout=30)
        delivery = await only_delivery(engine)
        assert await delivery.result(timeout=60) == 204
        detail = await engine.get_run(delivery.run_id)
    assert len(rec.requests) == 3
    ids = {r.headers["webhook-id"] for r in rec.requests}
    assert len(ids) == 1
    verifier = Webhook(endpoint.secret)
    for request in rec.requests:
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == "run.completed"
        assert payload["data"]["run_id"] == str(handle.run_id)
        assert payload["data"]["workflow"] == "webhooks.checkout"
        assert request.path == "/hooks?tenant=acme"
    attempts = [s for s in detail.steps if s.kind == "step"]
    assert [s.status for s in attempts] == ["failed", "failed", "completed"]
    assert "HTTP 500" in str(attempts[0].error)
    assert detail.tags == [f"webhook:{endpoint.id}"]
    assert endpoint.secret not in json.dumps(detail.input)


async def test_a_final_failure_is_a_failed_delivery_run_without_secrets(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        receiver(500) as rec,
        make_engine(checkout, tracer_provider=provider) as engine,
    ):
        endpoint = await engine.webhooks.add(
            rec.url, kinds=["run.completed"], max_attempts=2, retry_interval=0
        )
        await (await engine.start(checkout, "o-2")).result(timeout=30)
        delivery = await only_delivery(engine)
        with pytest.raises(durable.WorkflowFailed) as failed:
            await delivery.result(timeout=60)
        listed = await engine.webhooks.deliveries(endpoint.id, status="failed")
        detail = await engine.get_run(delivery.run_id)
    assert len(rec.requests) == 2
    assert [r.run_id for r in listed.items] == [delivery.run_id]
    error = failed.value.error
    assert error is not None
    assert error.code == "webhook_delivery_failed"
    assert f"endpoint {endpoint.id}" in error.message
    assert endpoint.secret is not None
    secret_key = endpoint.secret.removeprefix("whsec_")
    signatures = [r.headers["webhook-signature"] for r in rec.requests]
    recorded = json.dumps(
        [detail.input, str(detail.error), [str(s.error) for s in detail.steps]], default=str
    )
    spans = json.dumps(
        [
            (
                s.name,
                dict(s.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in s.events],
            )
            for s in exporter.get_finished_spans()
        ],
        default=str,
    )
    for text in (recorded, spans, caplog.text, str(failed.value)):
        assert secret_key not in text
        assert "tenant=acme" not in text  # the URL (it may carry a token) stays out too
        for signature in signatures:
            assert signature not in text
    assert exporter.get_finished_spans()  # spans were recorded, and carry no secret


async def test_management_and_bad_input(make_engine: EngineFactory, database_url: str) -> None:
    async with make_engine(worker=False) as engine:
        added = await engine.webhooks.add(
            "https://example.com/in", kinds=["run.failed", "step.failed"], description="ops"
        )
        assert added.secret is not None
        assert added.secret.startswith("whsec_")
        assert added.secret not in repr(added)
        listed = await engine.webhooks.list()
        assert [(e.id, e.kinds, e.secret) for e in listed] == [
            (added.id, ["run.failed", "step.failed"], None)
        ]
        assert await engine.webhooks.disable(added.id)
        got = await engine.webhooks.get(added.id)
        assert got is not None
        assert got.disabled
        assert await engine.webhooks.enable(added.id)
        for bad, error in [
            ({"url": "ftp://example.com"}, ValueError),
            ({"url": "not a url"}, ValueError),
            ({"url": "https://x.io", "kinds": ["run.exploded"]}, ValueError),
            ({"url": "https://x.io", "secret": "whsec_!!!"}, ValueError),
            ({"url": "https://x.io", "max_attempts": 0}, ValueError),
            ({"url": "https://x.io", "timeout": 0}, ValueError),
            ({"url": "https://x.io", "workflows": "checkout"}, TypeError),
        ]:
            url = bad.pop("url")
            with pytest.raises(error) as refused:
                await engine.webhooks.add(url, **bad)
            assert "!!!" not in str(refused.value)
        assert len(await engine.webhooks.list()) == 1
        assert await engine.webhooks.remove(added.id)
        assert not await engine.webhooks.remove(added.id)
        assert await engine.webhooks.get(added.id) is None
    assert (
        await support.count_rows(database_url, "SELECT count(*) FROM durable.webhook_endpoints")
        == 0
    )


async def test_a_given_secret_signs_and_delivery_events_are_not_delivered(
    make_engine: EngineFactory, database_url: str
) -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    async with receiver(200) as rec, make_engine(checkout) as engine:
        await engine.webhooks.add(rec.url, secret=secret)  # every kind, every workflow
        await (await engine.start(checkout, "o-3")).result(timeout=30)
        await rec.wait_for(3)  # run.started, step.completed, run.completed
        # Wait until the dispatcher is past the deliveries' own events, then look again.
        await poll_until(lambda: support.count_rows(database_url, PASSED, DELIVERY_WORKFLOW))
        deliveries = await engine.webhooks.deliveries()
    assert len(rec.requests) == 3
    assert len(deliveries.items) == 3
    kinds = sorted(Webhook(secret).verify(r.body, r.headers)["type"] for r in rec.requests)
    assert kinds == ["run.completed", "run.started", "step.completed"]
    assert len({r.headers["webhook-id"] for r in rec.requests}) == 3


async def poll_until(check: Callable[[], Awaitable[object]]) -> None:
    while not await check():  # noqa: ASYNC110 (a database state: nothing to wait on)
        await anyio.sleep(0.02)


# True once the three deliveries completed and the dispatch position is past all their events.
PASSED = """
SELECT count(*) FROM durable.webhook_cursor AS c
WHERE (c.xid, c.seq) >= ALL (
    SELECT xid, seq FROM durable.event_log WHERE workflow_name = $1 AND kind = 'run.completed')
  AND (SELECT count(*) FROM durable.event_log
       WHERE workflow_name = $1 AND kind = 'run.completed') = 3
"""
