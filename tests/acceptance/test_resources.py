"""Resource scoping and metadata: a run belongs to one resource; calls scoped to another
resource never see it (get_run, signal, cancel, handles, listing); metadata is stored,
capped, and shown."""

from __future__ import annotations

import json

import pytest

import durable
from durable import Engine, PayloadTooLarge, RunNotFound, RunStatus, SignalKind, workflow
from tests.acceptance import support
from tests.acceptance.test_cli import cli

pytestmark = pytest.mark.anyio


@workflow(name="resources.approval")
async def approval(order: str) -> str:
    answer: str = await durable.wait_for_signal("approve")
    return f"{order}: {answer}"


WORKFLOWS = [approval]


async def test_resource_scoping_refuses_cross_tenant_get_run_signal_and_cancel(
    engine: Engine,
) -> None:
    acme = await engine.start(approval, "o-1", resource_id="acme", metadata={"plan": "pro"})
    globex = await engine.start(approval, "o-2", resource_id="globex")
    await support.wait_for_status(acme, "waiting")

    with pytest.raises(RunNotFound):
        await engine.get_run(acme.run_id, resource_id="globex")
    delivery = await engine.signal(acme.run_id, "approve", "yes", resource_id="globex")
    assert delivery.kind == SignalKind.RUN_NOT_FOUND
    with pytest.raises(RunNotFound):
        await engine.cancel(acme.run_id, resource_id="globex")
    foreign = engine.handle(acme.run_id, resource_id="globex")
    for call in (foreign.status(), foreign.detail(), foreign.progress(), foreign.cancel()):
        with pytest.raises(RunNotFound):
            await call
    assert (await foreign.signal("approve", "yes")).kind == SignalKind.RUN_NOT_FOUND

    # Nothing of the refused calls reached the run.
    detail = await engine.get_run(acme.run_id, resource_id="acme")
    assert detail.status == RunStatus.WAITING
    assert (detail.resource_id, detail.metadata) == ("acme", {"plan": "pro"})
    own = engine.handle(acme.run_id, resource_id="acme")
    assert (await own.signal("approve", "yes")).kind == SignalKind.DELIVERED
    assert await own.result(timeout=10) == "o-1: yes"
    assert await engine.cancel(globex.run_id, resource_id="globex") is True


async def test_listing_by_resource_and_idempotency_across_resources(engine: Engine) -> None:
    first = await engine.start(approval, "o-1", resource_id="acme", idempotency_key="k1")
    await engine.start(approval, "o-2", resource_id="globex")
    await engine.start(approval, "o-3")
    page = await engine.list_runs(resource_id="acme")
    assert [r.run_id for r in page.items] == [first.run_id]
    assert page.items[0].resource_id == "acme"
    assert len((await engine.list_runs()).items) == 3

    again = await engine.start(approval, "o-1", resource_id="acme", idempotency_key="k1")
    assert again.run_id == first.run_id
    with pytest.raises(ValueError, match="another resource"):
        await engine.start(approval, "o-1", resource_id="globex", idempotency_key="k1")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"resource_id": ""}, ValueError),
        ({"resource_id": "x" * 201}, ValueError),
        ({"resource_id": 42}, TypeError),
        ({"resource_id": "a\x00b"}, ValueError),
        ({"metadata": ["not", "a", "mapping"]}, TypeError),
        ({"metadata": {1: "int key"}}, TypeError),
        ({"metadata": {"big": "x" * 5000}}, PayloadTooLarge),
        ({"metadata": {"nan": float("nan")}}, durable.SerializationError),
    ],
)
async def test_bad_scopes_and_metadata_are_refused_and_store_nothing(
    engine: Engine, options: dict[str, object], error: type
) -> None:
    with pytest.raises(error):
        await engine.start(approval, "o-1", **options)  # type: ignore[arg-type]
    assert (await engine.list_runs()).items == []


async def test_the_cli_shows_and_filters_by_resource(engine: Engine, database_url: str) -> None:
    handle = await engine.start(approval, "o-9", resource_id="acme", metadata={"region": "eu"})
    await engine.start(approval, "o-10")
    shown = await cli(database_url, "runs", "show", str(handle.run_id))
    assert "resource  acme" in shown.stdout
    assert 'metadata  {"region": "eu"}' in shown.stdout
    listed = await cli(database_url, "runs", "list", "--resource", "acme", "--json")
    items = json.loads(listed.stdout)["items"]
    assert [(i["run_id"], i["resource_id"]) for i in items] == [(str(handle.run_id), "acme")]
