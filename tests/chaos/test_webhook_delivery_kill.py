"""A worker SIGKILLed in the middle of a webhook delivery: the delivery is a durable run,
so another worker takes it over once the lease expires and posts again, with the same
``webhook-id`` and a fresh valid signature."""

from __future__ import annotations

from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from durable import Engine
from durable._client.webhooks import DELIVERY_WORKFLOW
from tests.chaos.conftest import WorkerProcesses
from tests.chaos.worker_app import WORKFLOWS, echo_flow
from tests.webhook_receiver import receiver

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]


async def test_a_delivery_survives_a_sigkilled_worker(
    database_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    # The first request is held unanswered (the worker is killed while it waits); the
    # second is accepted.
    async with (
        receiver(0, 200) as rec,
        Engine(database_url, worker=False, workflows=WORKFLOWS, poll_interval=0.2) as client,
    ):
        endpoint = await client.webhooks.add(
            rec.url, kinds=["run.completed"], workflows=["chaos.echo_flow"], timeout=300
        )
        handle = await client.start(echo_flow, "hello")
        first = workers.spawn(database_url, marks)
        await handle.result(timeout=60)
        await rec.wait_for(1)
        workers.kill(first)

        workers.spawn(database_url, marks)
        await rec.wait_for(2)
        page = await client.list_runs(workflow=DELIVERY_WORKFLOW)
        assert len(page.items) == 1
        delivery = client.handle(page.items[0].run_id)
        assert await delivery.result(timeout=60) == 200
        detail = await client.get_run(delivery.run_id)

    assert len(rec.requests) == 2
    assert len({r.headers["webhook-id"] for r in rec.requests}) == 1
    verifier = Webhook(endpoint.secret)
    payloads = [verifier.verify(r.body, r.headers) for r in rec.requests]
    assert {p["data"]["run_id"] for p in payloads} == {str(handle.run_id)}
    # The killed attempt left no record; the delivery completed in one recorded attempt.
    assert [(s.name, s.status) for s in detail.steps if s.kind == "step"] == [
        ("durable.webhook_attempt", "completed")
    ]
    assert detail.attempt == 2  # two executions: the killed one and the one that finished
