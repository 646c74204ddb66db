"""``wf.options(...).start(...)``: the typed start with per-run options.

Options are checked when given (a bad one raises at ``.options()``, before any run exists),
the options object is immutable and reusable, chained ``.options()`` calls override earlier
values, and the stored run carries every option. Inside a workflow the same call starts a
child with the options that apply to one.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

import durable
from durable import Engine, RunStatus, WorkflowFailed, WorkflowOptions
from durable.testing import Replayer
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@durable.workflow(name="tests.typed.greet")
async def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@durable.workflow(name="tests.typed.parent")
async def parent(child_queue: str) -> list[str]:
    handle = await greet.options(queue=child_queue, tags=["child"], priority=3).start("kid")
    return [str(handle.run_id), await handle.result()]


@durable.workflow(name="tests.typed.bad_parent")
async def bad_parent() -> None:
    await greet.options(idempotency_key="once").start("kid")


WORKFLOWS = [greet, parent, bad_parent]


async def _row(database_url: str, run_id: UUID) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT queue, priority, tags, idempotency_key, concurrency_key, resource_id,"
            " wake_at - created_at AS delay, deadline_at - created_at AS timeout"
            " FROM durable.runs WHERE id = $1",
            run_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_every_option_reaches_the_stored_run(
    make_engine: EngineFactory, database_url: str
) -> None:
    run_id = uuid4()
    opts = greet.options(
        idempotency_key="greet-1", tags=["tenant:acme"], delay="1h", queue="slow",
        priority=7, concurrency_key="acme", timeout=timedelta(minutes=5),
        resource_id="acme", metadata={"source": "test"}, run_id=run_id,
    )  # fmt: skip
    async with make_engine(greet, worker=False) as client:
        handle = await opts.start("ada", punctuation="?")
        assert handle.run_id == run_id
        detail = await client.get_run(run_id, resource_id="acme")
    row = await _row(database_url, run_id)
    assert detail.status == RunStatus.PENDING
    assert detail.input == {"args": ["ada", "?"], "kwargs": {}}
    assert (row["queue"], row["priority"], list(row["tags"])) == ("slow", 7, ["tenant:acme"])
    assert (row["idempotency_key"], row["concurrency_key"]) == ("greet-1", "acme")
    assert row["resource_id"] == "acme"
    assert row["delay"] >= timedelta(minutes=59)
    assert timedelta(minutes=4) < row["timeout"] <= timedelta(minutes=5, seconds=1)
    assert detail.metadata == {"source": "test"}


async def test_the_options_object_is_reusable_and_idempotent(engine: Engine) -> None:
    once = greet.options(idempotency_key="same")
    first = await once.start("ada")
    again = await once.start("ada")
    assert again.run_id == first.run_id
    assert await first.result(timeout=30) == "hello ada!"
    other = await greet.options(idempotency_key="other").start("bob", punctuation=".")
    assert other.run_id != first.run_id
    assert await other.result(timeout=30) == "hello bob."


async def test_chained_options_override_earlier_values(
    make_engine: EngineFactory, database_url: str
) -> None:
    base = greet.options(queue="slow", priority=1, tags=["a"])
    chained = base.options(priority=5).options(tags=[])
    assert (base.chosen.priority, base.chosen.tags) == (1, ("a",))  # unchanged
    assert (chained.chosen.queue, chained.chosen.priority, chained.chosen.tags) == ("slow", 5, ())
    assert isinstance(chained, WorkflowOptions)
    assert chained == greet.options(queue="slow", priority=5, tags=())
    async with make_engine(greet, worker=False):
        handle = await chained.start("ada")
    row = await _row(database_url, handle.run_id)
    assert (row["queue"], row["priority"], list(row["tags"])) == ("slow", 5, [])


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"tags": "not-a-list"}, TypeError, "tags must be a list"),
        ({"priority": "high"}, TypeError, "priority"),
        ({"priority": 2**40}, ValueError, "priority"),
        ({"delay": -1}, ValueError, "delay"),
        ({"timeout": math.inf}, ValueError, "timeout"),
        ({"queue": ""}, ValueError, "queue"),
        ({"idempotency_key": 42}, TypeError, "idempotency_key"),
        ({"resource_id": ""}, ValueError, "resource_id"),
        ({"metadata": {"k": object()}}, durable.SerializationError, "metadata"),
        ({"run_id": "not-a-uuid"}, ValueError, "run_id"),
    ],
)
def test_a_bad_option_fails_at_options_time(
    options: dict[str, Any], error: type[Exception], text: str
) -> None:
    # No engine is running: the check happens before anything could be started.
    with pytest.raises(error, match=text):
        greet.options(**options)


async def test_inside_a_workflow_options_start_a_child(engine: Engine, database_url: str) -> None:
    handle = await parent.start("default")
    child_id, greeting = await handle.result(timeout=30)
    assert greeting == "hello kid!"
    row = await _row(database_url, UUID(child_id))
    assert (row["queue"], row["priority"], list(row["tags"])) == ("default", 3, ["child"])
    assert (await engine.get_run(UUID(child_id))).parent_run_id == handle.run_id


async def test_a_child_refuses_an_idempotency_key(engine: Engine) -> None:
    handle = await bad_parent.start()
    with pytest.raises(WorkflowFailed) as failed:
        await handle.result(timeout=30)
    assert failed.value.error.type.endswith("ValueError")
    assert "cannot be set on a child run" in failed.value.error.message


def test_workflows_must_be_workflows() -> None:
    with pytest.raises(TypeError, match="must hold @workflow functions"):
        Engine("postgresql://unused/db", workflows=[greet, print])
    with pytest.raises(TypeError, match="must be a list of @workflow functions"):
        Engine("postgresql://unused/db", workflows=greet)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must hold @workflow functions"):
        Replayer(workflows=["tests.typed.greet"])
