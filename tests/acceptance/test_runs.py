"""Starting runs, waiting for results, and reading them back: the everyday surface."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

import durable
from durable import (
    Engine,
    RunStatus,
    SerializationError,
    UnknownWorkflow,
    Workflow,
    WorkflowFailed,
    step,
    workflow,
)
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@step
async def add(a: int, b: int) -> int:
    CALLS["add"] += 1
    return a + b


@step(name="greet")
async def make_greeting(name: str) -> str:
    CALLS["greet"] += 1
    return f"hello {name}"


@step(retries=2, initial_interval=0.01, max_interval=0.01)
async def flaky_once() -> str:
    key = support.run_key("flaky_once")
    CALLS[key] += 1
    if CALLS[key] == 1:
        raise ConnectionError("first attempt fails")
    return "ok"


@workflow
async def pipeline(x: int) -> dict[str, Any]:
    a = await add(x, 1)
    greeting = await make_greeting("ada")
    b = await add(a, 10)
    flaky = await flaky_once()
    return {"a": a, "b": b, "greeting": greeting, "flaky": flaky}


@workflow
async def echo(value: str) -> str:
    CALLS[("echo", value)] += 1
    return value


@workflow
async def always_fails(reason: str) -> str:
    raise ValueError(reason)


@workflow
async def other_echo(value: str) -> str:
    return value


WORKFLOWS = [pipeline, echo, always_fails, other_echo]


# -- results, sugar and status -------------------------------------------------------------


async def test_multi_step_workflow_returns_its_result(engine: Engine) -> None:
    handle = await engine.start(pipeline, 5)
    assert handle.created is True
    assert await handle.result(timeout=5) == {
        "a": 6,
        "b": 16,
        "greeting": "hello ada",
        "flaky": "ok",
    }
    assert await handle.status() == RunStatus.COMPLETED
    assert await handle.status() == "completed"
    assert CALLS["add"] == 2
    assert CALLS["greet"] == 1


async def test_start_sugar_uses_the_running_engine(engine: Engine) -> None:
    handle = await echo.start("sugar")
    assert await handle.result(timeout=5) == "sugar"
    detail = await engine.get_run(handle.run_id)
    assert detail.workflow == echo.name == f"{__name__}.echo"
    assert detail.status == RunStatus.COMPLETED
    assert detail.output == "sugar"
    assert detail.input == {"args": ["sugar"], "kwargs": {}}


async def test_status_of_a_run_no_worker_serves_stays_pending(make_engine: EngineFactory) -> None:
    async with make_engine(worker=False) as client:
        handle = await client.start(echo, "nobody runs me")
        assert await handle.status() == RunStatus.PENDING
        with pytest.raises(TimeoutError):
            await handle.result(timeout=0.3)
        assert CALLS[("echo", "nobody runs me")] == 0


async def test_get_run_shows_the_steps_timeline(engine: Engine) -> None:
    handle = await engine.start(pipeline, 1, tags=["tenant:acme"])
    await handle.result(timeout=5)
    detail = await engine.get_run(handle.run_id)

    assert detail.run_id == handle.run_id
    assert detail.status == RunStatus.COMPLETED
    assert detail.tags == ["tenant:acme"]
    assert detail.version == 1
    assert detail.attempt == 1
    assert detail.error is None
    assert detail.output == {"a": 2, "b": 12, "greeting": "hello ada", "flaky": "ok"}
    assert detail.started_at is not None
    assert detail.finished_at is not None
    assert detail.created_at <= detail.started_at <= detail.finished_at

    steps = [(s.cursor_key, s.kind, s.name, s.status, s.attempt, s.output) for s in detail.steps]
    assert steps == [
        ("step:add#0", "step", "add", "completed", 1, 2),
        ("step:greet#0", "step", "greet", "completed", 1, "hello ada"),
        ("step:add#1", "step", "add", "completed", 1, 12),
        ("step:flaky_once#0", "step", "flaky_once", "completed", 2, "ok"),
    ]
    for info in detail.steps:
        assert info.error is None
        assert info.started_at is not None
        assert info.finished_at is not None
        assert info.started_at <= info.finished_at
    finished = [s.finished_at for s in detail.steps]
    assert finished == sorted(finished)


async def test_get_run_of_an_unknown_id_raises_run_not_found(engine: Engine) -> None:
    with pytest.raises(durable.RunNotFound):
        await engine.get_run(uuid.uuid4())


# -- listing -------------------------------------------------------------------------------


async def test_list_runs_filters_by_workflow_status_and_tag(engine: Engine) -> None:
    acme_ok = [await engine.start(echo, f"a{i}", tags=["tenant:acme"]) for i in range(3)]
    other_ok = [await engine.start(echo, f"o{i}", tags=["tenant:other"]) for i in range(2)]
    acme_failed = [
        await engine.start(always_fails, f"f{i}", tags=["tenant:acme", "vip"]) for i in range(2)
    ]
    for handle in acme_ok + other_ok:
        await handle.result(timeout=5)
    for handle in acme_failed:
        with pytest.raises(durable.WorkflowFailed):
            await handle.result(timeout=5)

    def ids(page: durable.Page[durable.RunSummary]) -> set[uuid.UUID]:
        return {item.run_id for item in page.items}

    everything = await engine.list_runs()
    assert ids(everything) == {h.run_id for h in acme_ok + other_ok + acme_failed}
    assert everything.next_cursor is None

    by_object = await engine.list_runs(workflow=echo)
    by_name = await engine.list_runs(workflow=echo.name)
    assert ids(by_object) == ids(by_name) == {h.run_id for h in acme_ok + other_ok}
    assert all(item.workflow == echo.name for item in by_object.items)

    failed = await engine.list_runs(status="failed")
    assert ids(failed) == {h.run_id for h in acme_failed}
    assert all(item.status == RunStatus.FAILED for item in failed.items)
    assert all(
        item.error is not None and item.error.type == "builtins.ValueError" for item in failed.items
    )

    both = await engine.list_runs(status=[RunStatus.COMPLETED, "failed"])
    assert len(both.items) == 7

    acme = await engine.list_runs(tag="tenant:acme")
    assert ids(acme) == {h.run_id for h in acme_ok + acme_failed}
    assert ids(await engine.list_runs(tag="vip")) == {h.run_id for h in acme_failed}
    acme_echo = await engine.list_runs(workflow=echo, tag="tenant:acme", status="completed")
    assert ids(acme_echo) == {h.run_id for h in acme_ok}

    nothing = await engine.list_runs(tag="tenant:nobody")
    assert nothing.items == []
    assert nothing.next_cursor is None
    assert (await engine.list_runs(workflow=other_echo)).items == []
    with pytest.raises(ValueError, match="bogus"):
        await engine.list_runs(status="bogus")


async def test_list_runs_pages_through_every_run_once(make_engine: EngineFactory) -> None:
    async with make_engine(worker=False) as client:
        started = [(await client.start(echo, f"p{i}")).run_id for i in range(23)]
        seen: list[uuid.UUID] = []
        created: list[Any] = []
        cursor: str | None = None
        sizes: list[int] = []
        for _ in range(10):  # more than enough pages; the loop must end on next_cursor None
            page = await client.list_runs(workflow=echo, limit=5, cursor=cursor)
            sizes.append(len(page.items))
            seen.extend(item.run_id for item in page.items)
            created.extend((item.created_at, item.run_id) for item in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert cursor is None
        assert sizes == [5, 5, 5, 5, 3]
        assert len(seen) == len(set(seen)) == 23
        assert set(seen) == set(started)
        assert created == sorted(created, reverse=True)  # newest first, ties broken by id


async def test_list_runs_last_full_page_has_no_next_cursor(make_engine: EngineFactory) -> None:
    async with make_engine(worker=False) as client:
        started = {(await client.start(echo, f"q{i}")).run_id for i in range(6)}
        first = await client.list_runs(limit=3)
        assert len(first.items) == 3
        assert first.next_cursor is not None
        second = await client.list_runs(limit=3, cursor=first.next_cursor)
        assert len(second.items) == 3
        assert second.next_cursor is None
        assert {i.run_id for i in first.items} | {i.run_id for i in second.items} == started


# -- idempotency and explicit run ids ------------------------------------------------------


async def test_same_idempotency_key_returns_the_same_run(engine: Engine, database_url: str) -> None:
    first = await engine.start(echo, "once", idempotency_key="order-42")
    second = await engine.start(echo, "once", idempotency_key="order-42")
    assert first.created is True
    assert second.created is False
    assert second.run_id == first.run_id
    assert await second.result(timeout=5) == "once"
    assert await first.result(timeout=5) == "once"
    assert CALLS[("echo", "once")] == 1
    rows = await support.count_rows(
        database_url, "SELECT count(*) FROM durable.runs WHERE idempotency_key = 'order-42'"
    )
    assert rows == 1
    # The key is unique per workflow: another workflow may use the same key.
    other = await engine.start(other_echo, "x", idempotency_key="order-42")
    assert other.created is True
    assert other.run_id != first.run_id
    assert await other.result(timeout=5) == "x"


async def test_explicit_run_id_is_used_and_reuse_returns_the_existing_run(
    engine: Engine, database_url: str
) -> None:
    run_id = uuid.uuid4()
    first = await engine.start(echo, "first", run_id=run_id)
    assert first.run_id == run_id
    assert first.created is True
    again = await engine.start(echo, "second", run_id=run_id)
    assert again.run_id == run_id
    assert again.created is False
    assert await again.result(timeout=5) == "first"
    assert CALLS[("echo", "second")] == 0
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 1


# -- starting by name ----------------------------------------------------------------------


async def test_unknown_workflow_raises_and_stores_nothing(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(echo) as _worker, make_engine(worker=False) as client:
        with pytest.raises(UnknownWorkflow) as caught:
            await client.start("no.such.workflow", 1, key="v")
        assert caught.value.code == "unknown_workflow"
        assert "no.such.workflow" in str(caught.value)
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0


async def test_start_by_name_from_a_client_engine(make_engine: EngineFactory) -> None:
    async with make_engine(pipeline) as _worker, make_engine(worker=False) as client:
        handle = await client.start(pipeline.name, 3)
        assert await handle.result(timeout=5) == {
            "a": 4,
            "b": 14,
            "greeting": "hello ada",
            "flaky": "ok",
        }
        assert await handle.status() == RunStatus.COMPLETED


@dataclass
class Person:
    name: str
    age: int


@dataclass
class Greeting:
    text: str
    times: int


async def _remote_greet(person: Person, times: int) -> Greeting:
    # Attribute access proves the worker decoded the plain JSON input by its type hints.
    return Greeting(text=f"hi {person.name} ({person.age})", times=times)


# Built without the decorator, so it is missing from this process's default registry: the
# client below knows it only by the name a worker recorded, like a process without the code.
remote_greet: Workflow[..., Greeting] = Workflow(
    _remote_greet,
    name="acceptance.remote_greet",
    version=1,
    queue="default",
    timeout=None,
    schedule=None,
    timezone="UTC",
)


async def test_start_by_name_without_the_code_uses_plain_json(make_engine: EngineFactory) -> None:
    async with make_engine(remote_greet) as _worker, make_engine(worker=False) as client:
        handle = await client.start("acceptance.remote_greet", {"name": "ada", "age": 36}, times=2)
        result = await handle.result(timeout=5)
        assert type(result) is dict
        assert result == {"text": "hi ada (36)", "times": 2}


async def test_start_by_name_with_bad_input(make_engine: EngineFactory, database_url: str) -> None:
    async with make_engine(remote_greet) as _worker, make_engine(worker=False) as client:
        # Not JSON at all: refused at start, nothing stored.
        with pytest.raises(SerializationError):
            await client.start("acceptance.remote_greet", object(), times=1)
        assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0
        # JSON of the wrong shape for the worker's hints: the run fails with a clear error.
        handle = await client.start("acceptance.remote_greet", {"name": "ada"}, times=1)
        with pytest.raises(WorkflowFailed) as caught:
            await handle.result(timeout=5)
        assert caught.value.error.type == "durable.errors.SerializationError"
        assert "person" in caught.value.error.message


# -- steps outside workflows ---------------------------------------------------------------


async def test_step_outside_a_workflow_is_a_plain_coroutine(
    make_engine: EngineFactory, database_url: str
) -> None:
    assert await add(2, 3) == 5  # no engine at all
    async with make_engine(pipeline):
        assert await add(20, 22) == 42  # an engine runs, but no workflow calls the step
        assert await make_greeting("bob") == "hello bob"
        assert await echo("plain") == "plain"  # so does a workflow called directly
    assert CALLS["add"] == 2
    assert CALLS["greet"] == 1
    assert CALLS[("echo", "plain")] == 1
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.steps") == 0
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0
