"""Child runs: started once per cursor key, awaited or not, listed, failing into the parent,
bounded in depth and fan-out."""

from __future__ import annotations

import pytest

import durable
from durable import ChildLimitExceeded, Engine, RunStatus, WorkflowFailed, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS, OBSERVED

pytestmark = pytest.mark.anyio


@workflow
async def double(x: int) -> int:
    CALLS[("double", x)] += 1
    return x * 2


@workflow
async def parent_awaits_child(x: int) -> int:
    doubled = await double(x)
    await durable.sleep(0.2)  # parks again: the next execution replays the child call
    return doubled + 1


@workflow
async def refuses(reason: str) -> str:
    raise ValueError(reason)


@workflow
async def parent_catches_child_failure() -> dict[str, str]:
    try:
        await refuses("no such customer")
    except WorkflowFailed as exc:
        caught = {"type": exc.error.type, "message": exc.error.message, "child": str(exc.run_id)}
        OBSERVED.append(caught)
        await durable.sleep(0.2)  # the replay raises the recorded failure again
        return caught
    return {}


@workflow
async def parent_starts_children(n: int) -> list[str]:
    handles = [await double.start(i) for i in range(n)]
    await durable.sleep(0.2)  # the replay returns the same handles without new children
    return [str(h.run_id) for h in handles]


@workflow
async def nest(levels: int) -> int:
    if levels == 0:
        return 0
    return 1 + await nest(levels - 1)


@workflow
async def one_by_one(n: int) -> list[int]:
    return [await double(i) for i in range(n)]


WORKFLOWS = [
    double,
    parent_awaits_child,
    refuses,
    parent_catches_child_failure,
    parent_starts_children,
    nest,
    one_by_one,
]


async def _child_rows(database_url: str, parent: object) -> int:
    return await support.count_rows(
        database_url, "SELECT count(*) FROM durable.runs WHERE parent_run_id = $1", parent
    )


async def test_a_child_is_not_started_again_when_the_parent_resumes(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(parent_awaits_child, 21)
    assert await handle.result(timeout=5) == 43

    assert CALLS[("double", 21)] == 1
    assert await _child_rows(database_url, handle.run_id) == 1
    parent = await engine.get_run(handle.run_id)
    assert parent.attempt >= 2  # at least the replay after the sleep
    assert [s.cursor_key for s in parent.steps] == [f"child:{double.name}#0", "sleep#0"]
    assert parent.steps[0].output == 42

    [child_id] = parent.children
    child = await engine.get_run(child_id)
    assert child.parent_run_id == handle.run_id
    assert child.workflow == double.name
    assert child.status == RunStatus.COMPLETED
    assert child.output == 42


async def test_a_child_failure_raises_workflow_failed_in_the_parent(engine: Engine) -> None:
    handle = await engine.start(parent_catches_child_failure)
    caught = await handle.result(timeout=5)

    assert caught["type"] == "builtins.ValueError"
    assert caught["message"] == "no such customer"
    parent = await engine.get_run(handle.run_id)
    assert [str(c) for c in parent.children] == [caught["child"]]
    child = await engine.get_run(caught["child"])
    assert child.status == RunStatus.FAILED
    assert len(OBSERVED) == 2  # caught on the first execution and on the replay
    assert OBSERVED[0] == OBSERVED[1]
    assert parent.steps[0].status == "failed"


async def test_child_start_returns_a_handle_without_waiting(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(parent_starts_children, 3)
    child_ids = await handle.result(timeout=5)

    assert len(set(child_ids)) == 3
    for i, child_id in enumerate(child_ids):
        assert await engine.handle(child_id).result(timeout=5) == 2 * i
        assert CALLS[("double", i)] == 1
    assert await _child_rows(database_url, handle.run_id) == 3
    parent = await engine.get_run(handle.run_id)
    assert sorted(str(c) for c in parent.children) == sorted(child_ids)
    assert [s.cursor_key for s in parent.steps][:3] == [
        f"start:{double.name}#0",
        f"start:{double.name}#1",
        f"start:{double.name}#2",
    ]


async def test_nesting_deeper_than_max_child_depth_fails_clearly(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(nest, max_child_depth=2) as engine:
        assert await (await engine.start(nest, 2)).result(timeout=5) == 2

        handle = await engine.start(nest, 3)
        with pytest.raises(WorkflowFailed) as caught:
            await handle.result(timeout=5)
        assert "max_child_depth=2" in caught.value.error.message

        # The run at depth 2 is the one that was refused a child.
        child = (await engine.get_run(handle.run_id)).children[0]
        grandchild = (await engine.get_run(child)).children[0]
        deepest = await engine.get_run(grandchild)
        assert deepest.status == RunStatus.FAILED
        assert deepest.error is not None
        assert deepest.error.type.endswith("ChildLimitExceeded")
        assert deepest.error.code == ChildLimitExceeded.code == "child_limit_exceeded"
        assert "max_child_depth=2" in deepest.error.message
        assert not deepest.children


async def test_more_children_than_max_children_per_run_fails_clearly(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(one_by_one, double, max_children_per_run=3) as engine:
        assert await (await engine.start(one_by_one, 3)).result(timeout=5) == [0, 2, 4]

        handle = await engine.start(one_by_one, 5)
        with pytest.raises(WorkflowFailed) as caught:
            await handle.result(timeout=5)
        error = caught.value.error
        assert error.type.endswith("ChildLimitExceeded")
        assert error.code == "child_limit_exceeded"
        assert "max_children_per_run=3" in error.message
        assert "child number 4" in error.message
        assert await _child_rows(database_url, handle.run_id) == 3


async def test_child_limits_have_defaults() -> None:
    engine = Engine("postgresql://unused")
    assert engine.settings.max_child_depth >= 2
    assert engine.settings.max_children_per_run >= 100
