"""Replay is faithful (invariant 7): the first execution and every replay see the same value,
and a value that cannot be stored exactly is refused at the call, whose body runs once.
An outcome Postgres refuses to store ends the run ``failed``; it never loops (issue 10).
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import pytest

import durable
from durable import Engine, SerializationError, WorkflowFailed, step, workflow
from tests.acceptance import support
from tests.acceptance.support import CALLS, OBSERVED, park_once

pytestmark = pytest.mark.anyio

NAN = float("nan")
INF = float("inf")


@step
async def zebra_first() -> dict[str, int]:
    CALLS["zebra_first"] += 1
    return {"zebra": 1, "ant": 2, "mole": 3}


@step
async def untyped_pair() -> Any:
    CALLS["untyped_pair"] += 1
    return (1, 2)


@workflow
async def observes_order() -> dict[str, Any]:
    mapping = await zebra_first()
    pair = await untyped_pair()
    OBSERVED.append((list(mapping), type(pair).__name__, pair))
    await durable.set_event("progress", {"zebra": True, "ant": False})
    await park_once()  # the run parks, so the next execution replays both steps
    return {"z": list(mapping), "a": pair, "nested": {"y": 1, "b": 2}}


@step
async def missing_int() -> int:
    CALLS["missing_int"] += 1
    return None  # type: ignore[return-value]


@step
async def ellipsis_body() -> dict[str, int]: ...


@workflow
async def steps_none(which: str) -> str:
    if which == "int":
        await missing_int()
    else:
        await ellipsis_body()
    return "unreachable"


@workflow
async def returns_none_for_int() -> int:
    CALLS["returns_none_for_int"] += 1
    return None  # type: ignore[return-value]


@step
async def returns_untyped(value: Any) -> Any:
    CALLS["returns_untyped"] += 1
    return value


@workflow
async def stores_untyped(kind: str) -> str:
    await returns_untyped(_UNSTORABLE[kind])
    return "unreachable"


@workflow
async def echoes(value: Any) -> Any:
    return value


@workflow
async def returns_untyped_result(kind: str) -> Any:
    CALLS["returns_untyped_result"] += 1
    return _UNSTORABLE[kind]


_UNSTORABLE: dict[str, Any] = {
    "nested-nan": [NAN, {"k": INF}],
    "set": {"a": {1, 2}},
    "nul": {"text": "a\x00b"},
    "surrogate": ["\ud800"],
}


@step
async def raises_nul() -> int:
    CALLS["raises_nul"] += 1
    raise ValueError("bad byte \x00 and \ud800 here")


@workflow
async def step_error_nul() -> int:
    return await raises_nul()


class Declined(Exception):
    """Its constructor takes what its args do not hold: it cannot be rebuilt from a record."""

    def __init__(self, *, code: int) -> None:
        super().__init__(f"declined with code {code}")


@step
async def declines() -> None:
    CALLS["declines"] += 1
    raise Declined(code=51)


@workflow
async def catches_declined() -> str:
    try:
        await declines()
    except Exception as exc:
        OBSERVED.append((type(exc).__name__, str(exc)))
    await park_once()
    return "done"


@workflow
async def waits_for_payload() -> Any:
    return await durable.wait_for_signal("go")


# A cursor key over the btree limit of the steps primary key (2704 bytes): Postgres refuses
# the record, which nothing before the database knows.
_LONG_NAME = "long-" + secrets.token_hex(2000)


@step(name=_LONG_NAME)
async def unrecordable() -> int:
    CALLS["unrecordable"] += 1
    return 1


@workflow
async def records_unrecordable() -> int:
    return await unrecordable()


@workflow
async def publishes_a_refused_event() -> str:
    CALLS["publishes_a_refused_event"] += 1
    try:
        await durable.set_event("progress", "x" * 200)
    except SerializationError:
        return "caught"  # the run fails anyway: the call could not be recorded
    return "published"


@workflow
async def returns_long_text() -> str:
    CALLS["returns_long_text"] += 1
    return "x" * 200


WORKFLOWS = [
    observes_order,
    steps_none,
    returns_none_for_int,
    stores_untyped,
    returns_untyped_result,
    echoes,
    step_error_nul,
    waits_for_payload,
    records_unrecordable,
    returns_long_text,
    publishes_a_refused_event,
    catches_declined,
]


async def _failure(engine: Engine, handle: Any) -> Any:
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=10)
    detail = await engine.get_run(handle.run_id)
    assert detail.status == "failed"
    return caught.value.error


async def test_first_execution_and_replay_see_the_same_values(engine: Engine) -> None:
    handle = await engine.start(observes_order)
    result = await handle.result(timeout=10)
    assert CALLS["zebra_first"] == 1
    assert CALLS["untyped_pair"] == 1
    # One observation per execution: the first one and the replay after the park.
    assert len(OBSERVED) == 2
    assert OBSERVED[0] == OBSERVED[1] == (["zebra", "ant", "mole"], "list", [1, 2])
    assert list(result) == ["z", "a", "nested"]
    assert list(result["nested"]) == ["y", "b"]
    detail = await engine.get_run(handle.run_id)
    assert list(detail.output["nested"]) == ["y", "b"]
    assert list(detail.steps[0].output) == ["zebra", "ant", "mole"]
    assert list(detail.events["progress"]) == ["zebra", "ant"]
    assert list(await handle.get_event("progress")) == ["zebra", "ant"]


async def test_signal_payload_keeps_its_key_order(engine: Engine) -> None:
    handle = await engine.start(waits_for_payload)
    await handle.signal("go", {"zebra": 1, "ant": {"y": 2, "b": 3}})
    result = await handle.result(timeout=10)
    assert list(result) == ["zebra", "ant"]
    assert list(result["ant"]) == ["y", "b"]


@pytest.mark.parametrize("which", ["int", "ellipsis"])
async def test_step_returning_none_for_a_non_optional_hint_fails_at_the_step(
    engine: Engine, which: str
) -> None:
    handle = await engine.start(steps_none, which)
    error = await _failure(engine, handle)
    assert error.type == "durable.errors.SerializationError"
    [info] = (await engine.get_run(handle.run_id)).steps
    assert info.status == "failed"
    assert info.output is None
    assert CALLS["missing_int"] == (1 if which == "int" else 0)


async def test_workflow_returning_none_for_a_non_optional_hint_fails(engine: Engine) -> None:
    handle = await engine.start(returns_none_for_int)
    error = await _failure(engine, handle)
    assert error.type == "durable.errors.SerializationError"
    assert CALLS["returns_none_for_int"] == 1


@pytest.mark.parametrize("kind", sorted(_UNSTORABLE))
async def test_unstorable_step_result_fails_at_the_step_once(engine: Engine, kind: str) -> None:
    handle = await engine.start(stores_untyped, kind)
    error = await _failure(engine, handle)
    assert error.type == "durable.errors.SerializationError"
    assert CALLS["returns_untyped"] == 1
    [info] = (await engine.get_run(handle.run_id)).steps
    assert info.status == "failed"
    assert info.output is None


@pytest.mark.parametrize("kind", sorted(_UNSTORABLE))
async def test_unstorable_workflow_result_fails_the_run_once(engine: Engine, kind: str) -> None:
    handle = await engine.start(returns_untyped_result, kind)
    error = await _failure(engine, handle)
    assert error.type == "durable.errors.SerializationError"
    assert CALLS["returns_untyped_result"] == 1
    assert (await engine.get_run(handle.run_id)).attempt == 1


async def test_step_error_with_unstorable_characters_is_recorded_once(engine: Engine) -> None:
    handle = await engine.start(step_error_nul)
    error = await _failure(engine, handle)
    assert CALLS["raises_nul"] == 1
    # Its args cannot be stored, so neither the first run nor a replay rebuilds the type.
    assert error.type == "durable.errors.StepFailed"
    [info] = (await engine.get_run(handle.run_id)).steps
    assert info.status == "failed"
    assert info.error is not None
    assert info.error.type == "builtins.ValueError"
    assert info.error.message == "bad byte \\x00 and \\ud800 here"


@pytest.mark.parametrize(
    "payload",
    [{"v": NAN}, [INF], {"a": "x\x00"}, "\udfff", {1, 2}],
    ids=["nan", "inf", "nul", "surrogate", "set"],
)
async def test_unstorable_signal_payload_is_refused_at_the_call(
    engine: Engine, database_url: str, payload: Any
) -> None:
    handle = await engine.start(waits_for_payload)
    with pytest.raises(SerializationError):
        await engine.signal(handle.run_id, "go", payload)
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.signals") == 0
    await handle.signal("go", {"ok": 1})
    assert await handle.result(timeout=10) == {"ok": 1}


@pytest.mark.parametrize(
    "argument", [[NAN], "a\x00b", {"k": "\ud800"}, {1, 2}], ids=["nan", "nul", "surrogate", "set"]
)
async def test_unstorable_start_argument_is_refused_and_nothing_stored(
    engine: Engine, database_url: str, argument: Any
) -> None:
    with pytest.raises(SerializationError):
        await engine.start(echoes, argument)
    with pytest.raises(SerializationError):
        await engine.start(echoes.name, argument)  # by name: plain JSON
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"], ids=["nul", "surrogate"])
async def test_unstorable_names_tags_and_keys_are_refused_before_the_database(
    engine: Engine, database_url: str, bad: str
) -> None:
    with pytest.raises(ValueError, match="cannot store"):
        await engine.start(stores_untyped, "set", tags=[bad])
    with pytest.raises(ValueError, match="cannot store"):
        await engine.start(stores_untyped, "set", idempotency_key=bad)
    handle = await engine.start(waits_for_payload)
    with pytest.raises(ValueError, match="cannot store"):
        await engine.signal(handle.run_id, bad, 1)
    with pytest.raises(ValueError, match="cannot store"):
        await engine.signal(handle.run_id, "go", 1, idempotency_key=bad)
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 1
    await handle.cancel()


async def test_outcome_postgres_refuses_fails_the_run_once(engine: Engine) -> None:
    handle = await engine.start(records_unrecordable)
    error = await _failure(engine, handle)
    assert CALLS["unrecordable"] == 1
    assert "could not be stored" in error.message
    assert (await engine.get_run(handle.run_id)).attempt == 1


async def test_result_postgres_refuses_fails_the_run_once(
    engine: Engine, database_url: str
) -> None:
    # A constraint stands in for any limit Postgres enforces that the codec cannot know.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "ALTER TABLE durable.runs ADD CONSTRAINT small_output"
            " CHECK (octet_length(output::text) < 100)"
        )
    finally:
        await conn.close()
    handle = await engine.start(returns_long_text)
    error = await _failure(engine, handle)
    assert "result of run" in error.message
    assert "could not be stored" in error.message
    assert "CheckViolationError" in error.message
    assert CALLS["returns_long_text"] == 1
    assert (await engine.get_run(handle.run_id)).attempt == 1


async def test_event_postgres_refuses_fails_the_run_even_when_caught(
    engine: Engine, database_url: str
) -> None:
    # A constraint stands in for a limit Postgres enforces that no check before it knows
    # (an over-long key is now refused at the call, see durable._foundation.validate).
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "ALTER TABLE durable.events ADD CONSTRAINT small_value"
            " CHECK (octet_length(value::text) < 100)"
        )
    finally:
        await conn.close()
    handle = await engine.start(publishes_a_refused_event)
    error = await _failure(engine, handle)
    assert "could not be stored" in error.message
    assert CALLS["publishes_a_refused_event"] == 1


async def test_a_step_error_is_the_same_on_the_first_run_and_on_replay(engine: Engine) -> None:
    handle = await engine.start(catches_declined)
    assert await handle.result(timeout=10) == "done"
    assert CALLS["declines"] == 1
    assert len(OBSERVED) == 2  # the first execution, and the replay after the park
    assert OBSERVED[0] == OBSERVED[1]
    assert OBSERVED[0][0] == "StepFailed"
