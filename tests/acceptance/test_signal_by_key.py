"""Signals by business key: ``engine.signal(workflow=, idempotency_key=, name=, payload=)``
reaches the run started with that key, with no run id at hand."""

from __future__ import annotations

import pytest

import durable
from durable import Engine, SignalKind, workflow
from tests.acceptance import support

pytestmark = pytest.mark.anyio


@workflow(name="by_key.checkout")
async def checkout(order: str) -> str:
    answer: str = await durable.wait_for_signal("approve")
    return f"{order}: {answer}"


WORKFLOWS = [checkout]


async def test_a_signal_finds_its_run_by_workflow_and_idempotency_key(engine: Engine) -> None:
    handle = await engine.start(checkout, "order-42", idempotency_key="order-42")
    other = await engine.start(checkout, "order-43", idempotency_key="order-43")
    await support.wait_for_status(handle, "waiting")

    sent = await engine.signal(
        workflow="by_key.checkout", idempotency_key="order-42", name="approve", payload="yes",
        delivery_key="approval-1",
    )  # fmt: skip
    assert (sent.kind, sent.run_id) == (SignalKind.DELIVERED, handle.run_id)
    again = await engine.signal(
        workflow=checkout, idempotency_key="order-42", name="approve", payload="yes",
        delivery_key="approval-1",
    )  # fmt: skip
    assert again.kind == SignalKind.DUPLICATE
    assert await handle.result(timeout=10) == "order-42: yes"
    assert await other.status() == "waiting"  # the other order heard nothing


async def test_an_unknown_key_or_a_foreign_resource_is_run_not_found(engine: Engine) -> None:
    await engine.start(checkout, "order-7", idempotency_key="order-7", resource_id="acme")
    missing = await engine.signal(
        workflow="by_key.checkout", idempotency_key="nope", name="approve"
    )
    assert (missing.kind, missing.run_id) == (SignalKind.RUN_NOT_FOUND, None)
    foreign = await engine.signal(
        workflow="by_key.checkout", idempotency_key="order-7", name="approve", resource_id="globex"
    )
    assert foreign.kind == SignalKind.RUN_NOT_FOUND
    detail = (await engine.list_runs()).items[0]
    assert (await engine.export_run(detail.run_id)).signals == ()  # nothing was stored


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workflow": "by_key.checkout", "name": "approve"},  # no key
        {"name": "approve"},  # neither a run id nor a key
        {
            "run_id": "00000000-0000-0000-0000-000000000000",
            "workflow": "by_key.checkout",
            "idempotency_key": "k",
            "name": "approve",
        },  # both a run id and a key
        {"workflow": "by_key.checkout", "idempotency_key": "k"},  # no signal name
    ],
)
async def test_ambiguous_or_incomplete_addresses_are_refused(
    engine: Engine, kwargs: dict[str, str]
) -> None:
    with pytest.raises(TypeError):
        await engine.signal(**kwargs)  # type: ignore[arg-type]
