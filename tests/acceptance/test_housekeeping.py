"""Listing order and counts, deleting a finished run with its children, and the registered
workflows with the workers serving them (API and CLI)."""

from __future__ import annotations

import json

import pytest

import durable
from durable import Engine, RunNotFinished, RunNotFound, step, workflow
from tests.acceptance import support
from tests.acceptance.test_cli import cli

pytestmark = pytest.mark.anyio


@step
async def double(n: int) -> int:
    return n * 2


@workflow(name="housekeeping.leaf")
async def leaf(n: int) -> int:
    return await double(n)


@workflow(name="housekeeping.parent")
async def parent(n: int) -> int:
    await durable.set_event("seen", n)
    return await leaf(n) + 1


@workflow(name="housekeeping.waits")
async def waits() -> str:
    return await durable.wait_for_signal("go")


WORKFLOWS = [leaf, parent, waits]


async def test_list_order_pages_both_ways_and_count_matches(engine: Engine) -> None:
    started = [(await engine.start(leaf, n)).run_id for n in range(5)]
    for run_id in started:
        await engine.handle(run_id).result(timeout=10)

    oldest = await engine.list_runs(workflow=leaf, order="asc", limit=2)
    second = await engine.list_runs(workflow=leaf, order="asc", limit=2, cursor=oldest.next_cursor)
    newest = await engine.list_runs(workflow="housekeeping.leaf", limit=5)
    assert [r.run_id for r in oldest.items + second.items] == started[:4]
    assert [r.run_id for r in newest.items] == started[::-1]
    assert await engine.count_runs(workflow=leaf) == 5
    assert await engine.count_runs(workflow=leaf, status="failed") == 0
    assert await engine.count_runs() == 5
    with pytest.raises(ValueError, match="order"):
        await engine.list_runs(order="sideways")


async def test_delete_run_takes_its_children_and_records_and_refuses_unfinished_runs(
    engine: Engine, database_url: str
) -> None:
    done = await engine.start(parent, 3)
    assert await done.result(timeout=10) == 7
    (child_id,) = (await done.detail()).children
    busy = await engine.start(waits)
    await support.wait_for_status(busy, "waiting")

    with pytest.raises(RunNotFinished, match="cancel it first"):
        await engine.delete_run(busy.run_id)
    assert await busy.status() == "waiting"  # refused: untouched
    assert await engine.delete_run(done.run_id) == 2
    for run_id in (done.run_id, child_id):
        with pytest.raises(RunNotFound):
            await engine.get_run(run_id)
    with pytest.raises(RunNotFound):
        await engine.delete_run(done.run_id)

    refused = await cli(database_url, "runs", "delete", str(busy.run_id))
    assert refused.returncode == 1
    assert "unfinished" in refused.stderr
    await busy.cancel()
    deleted = await cli(database_url, "runs", "delete", str(busy.run_id))
    assert deleted.returncode == 0, deleted.stderr
    assert await engine.count_runs() == 0


async def test_workflows_lists_versions_and_the_workers_serving_them(
    engine: Engine, database_url: str
) -> None:
    listed = {(w.name, w.version): w for w in await engine.workflows()}
    assert set(listed) >= {("housekeeping.leaf", 1), ("housekeeping.parent", 1)}
    assert listed["housekeeping.leaf", 1].workers == [engine.runtime.worker_id]

    shown = await cli(database_url, "workflows", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {(w["name"], w["version"]): w for w in json.loads(shown.stdout)}
    assert rows["housekeeping.parent", 1]["workers"] == [engine.runtime.worker_id]
    table = await cli(database_url, "workflows")
    assert "housekeeping.waits" in table.stdout
