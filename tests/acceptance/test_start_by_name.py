"""Starting by name gives the same result whatever the client process imported.

``engine.start("name", ...)`` takes JSON-shaped values. A client that has the workflow's
code validates and coerces them by its hints at once (a bad input raises
``SerializationError`` and stores nothing); a client without the code stores them as
sent, and the worker validates them when it decodes the input: a bad input fails the run
once, with ``SerializationError`` as its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

import durable
from durable import Engine, RunStatus, SerializationError, Workflow, WorkflowFailed
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@dataclass
class Guest:
    name: str
    born: date


async def _invite(guest: Guest, seats: int = 1) -> dict[str, Any]:
    # guest.born.year and seats + 0 prove the input was rebuilt to its hinted types.
    return {"card": f"{guest.name} ({guest.born.year})", "seats": seats + 0}


# Not decorated, so absent from the default registry: a client engine serving no
# workflows knows it only by the name the worker recorded, like a process without the code.
invite: Workflow[..., dict[str, Any]] = Workflow(
    _invite, name="tests.by_name.invite", version=1, queue="default",
    timeout=None, schedule=None, timezone="UTC",
)  # fmt: skip

NAME = "tests.by_name.invite"


async def _echo_guest(guest: Guest) -> Guest:
    return guest


echo_guest: Workflow[..., Guest] = Workflow(
    _echo_guest, name="tests.by_name.echo_guest", version=1, queue="default",
    timeout=None, schedule=None, timezone="UTC",
)  # fmt: skip


def _clients(make_engine: EngineFactory) -> tuple[Engine, Engine]:
    return make_engine(invite, worker=False), make_engine(worker=False)


async def test_json_values_are_accepted_with_or_without_the_code(
    make_engine: EngineFactory,
) -> None:
    with_code, without_code = _clients(make_engine)
    async with make_engine(invite), with_code, without_code:
        results, inputs = [], []
        for client in (with_code, without_code):
            handle = await client.start(NAME, {"name": "Ada", "born": "1815-12-10"}, seats="2")
            results.append(await handle.result(timeout=5))
            inputs.append((await client.get_run(handle.run_id)).input)
        assert results == [{"card": "Ada (1815)", "seats": 2}] * 2
        # The code-aware client stored the coerced form; the worker decoded both alike.
        assert inputs[0] == {"args": [{"name": "Ada", "born": "1815-12-10"}, 2], "kwargs": {}}


async def test_typed_values_by_name_are_accepted_too(make_engine: EngineFactory) -> None:
    with_code, without_code = _clients(make_engine)
    async with make_engine(invite), with_code, without_code:
        for client in (with_code, without_code):
            handle = await client.start(NAME, Guest("Grace", date(1906, 12, 9)))
            assert await handle.result(timeout=5) == {"card": "Grace (1906)", "seats": 1}


async def test_a_result_by_name_is_json_whatever_the_client_imported(
    make_engine: EngineFactory,
) -> None:
    with_code = make_engine(echo_guest, worker=False)
    without_code = make_engine(worker=False)
    async with make_engine(echo_guest), with_code, without_code:
        for client in (with_code, without_code):
            handle = await client.start(echo_guest.name, {"name": "Ada", "born": "1815-12-10"})
            assert await handle.result(timeout=5) == {"name": "Ada", "born": "1815-12-10"}
        # Started with the workflow object, the result comes back as its hinted type.
        typed = await with_code.start(echo_guest, Guest("Ada", date(1815, 12, 10)))
        assert await typed.result(timeout=5) == Guest("Ada", date(1815, 12, 10))


async def _wait_forever() -> None:
    await durable.wait_for_signal("never")


bounded: Workflow[..., None] = Workflow(
    _wait_forever, name="tests.by_name.bounded", version=1, queue="default",
    timeout=3600.0, schedule=None, timezone="UTC",
)  # fmt: skip


async def test_the_workflow_timeout_applies_whatever_the_client_imported(
    make_engine: EngineFactory, database_url: str
) -> None:
    with_code = make_engine(bounded, worker=False)
    without_code = make_engine(worker=False)
    async with make_engine(bounded), with_code, without_code:
        for client in (with_code, without_code):
            handle = await client.start(bounded.name)
            row = await support.fetch_row(
                database_url,
                "SELECT extract(epoch FROM deadline_at - created_at)::float8 AS timeout "
                "FROM durable.runs WHERE id = $1",
                handle.run_id,
            )
            assert row is not None
            assert row["timeout"] == 3600.0
            await handle.cancel()


@pytest.mark.parametrize(
    ("args", "kwargs", "names"),
    [
        (({"name": "Ada"},), {}, "born"),  # a field missing
        (({"name": "Ada", "born": "not a date"},), {}, "born"),
        ((), {}, "guest"),  # a required argument missing
        (({"name": "Ada", "born": "1815-12-10"},), {"colour": "red"}, "colour"),  # unknown
    ],
)
async def test_input_that_does_not_fit_the_hints_fails_clearly_either_way(
    make_engine: EngineFactory,
    database_url: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    names: str,
) -> None:
    with_code, without_code = _clients(make_engine)
    async with make_engine(invite), with_code, without_code:
        with pytest.raises(SerializationError, match=names):
            await with_code.start(NAME, *args, **kwargs)
        assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0

        handle = await without_code.start(NAME, *args, **kwargs)
        with pytest.raises(WorkflowFailed) as caught:
            await handle.result(timeout=5)
        assert caught.value.error.type == "durable.errors.SerializationError"
        assert names in caught.value.error.message
        detail = await without_code.get_run(handle.run_id)
        assert detail.status == RunStatus.FAILED
        assert detail.attempt == 1  # failed once, not retried in a loop
        assert detail.steps == []
