"""Values that cannot be stored fail clearly at the boundary and leave the database as it was."""

from __future__ import annotations

from typing import Any

import pytest

from durable import Engine, SerializationError, WorkflowFailed, step, workflow
from tests.acceptance import support
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@workflow
async def doubles(n: int) -> int:
    return n * 2


@step(retries=3, initial_interval=0.01, max_interval=0.01)
async def wrong_type() -> int:
    CALLS["wrong_type"] += 1
    return "not an int"  # type: ignore[return-value]


@step(retries=3, initial_interval=0.01, max_interval=0.01)
async def opaque():  # type: ignore[no-untyped-def]  # unhinted on purpose
    CALLS["opaque"] += 1
    return object()


@workflow
async def stores_bad_result(which: str) -> str:
    if which == "hinted":
        await wrong_type()
    else:
        await opaque()
    return "unreachable"


@workflow
async def catches_bad_result() -> str:
    try:
        await wrong_type()
    except SerializationError as exc:
        return f"caught {exc.code}"
    return "not raised"


@workflow
async def returns_unencodable() -> Any:
    return {"value": object()}


WORKFLOWS = [doubles, stores_bad_result, catches_bad_result, returns_unencodable]


async def _row_counts(database_url: str) -> tuple[int, int]:
    runs = await support.count_rows(database_url, "SELECT count(*) FROM durable.runs")
    steps = await support.count_rows(database_url, "SELECT count(*) FROM durable.steps")
    return runs, steps


@pytest.mark.parametrize(
    "argument", [object(), "seven", 1.5], ids=["object", "str-for-int", "float-for-int"]
)
async def test_unencodable_argument_fails_at_start_and_stores_nothing(
    engine: Engine, database_url: str, argument: object
) -> None:
    with pytest.raises(SerializationError) as caught:
        await engine.start(doubles, argument)
    assert caught.value.code == "serialization_error"
    assert "'n'" in str(caught.value)  # names the argument
    with pytest.raises(SerializationError):
        await doubles.start(argument)  # type: ignore[arg-type]
    assert await _row_counts(database_url) == (0, 0)
    # The engine is unharmed: a good start right after works.
    assert await (await engine.start(doubles, 21)).result(timeout=5) == 42


async def test_call_that_does_not_bind_fails_at_start_and_stores_nothing(
    engine: Engine, database_url: str
) -> None:
    with pytest.raises(TypeError):
        await engine.start(doubles, 1, 2)
    with pytest.raises(TypeError):
        await engine.start(doubles, m=1)
    assert await _row_counts(database_url) == (0, 0)


@pytest.mark.parametrize("which", ["hinted", "unhinted"])
async def test_unencodable_step_result_fails_the_run_cleanly(engine: Engine, which: str) -> None:
    handle = await engine.start(stores_bad_result, which)
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert caught.value.error.type == "durable.errors.SerializationError"
    assert caught.value.error.code == "serialization_error"
    # Encoding is deterministic: the body is not retried in vain.
    assert CALLS["wrong_type" if which == "hinted" else "opaque"] == 1
    [info] = (await engine.get_run(handle.run_id)).steps
    assert info.status == "failed"
    assert info.output is None
    assert info.error is not None
    assert info.error.type == "durable.errors.SerializationError"


async def test_unencodable_step_result_is_catchable(engine: Engine) -> None:
    handle = await engine.start(catches_bad_result)
    assert await handle.result(timeout=5) == "caught serialization_error"
    assert CALLS["wrong_type"] == 1


async def test_unencodable_workflow_result_fails_the_run_cleanly(engine: Engine) -> None:
    handle = await engine.start(returns_unencodable)
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert caught.value.error.type == "durable.errors.SerializationError"
    detail = await engine.get_run(handle.run_id)
    assert detail.output is None
    assert detail.status == "failed"
