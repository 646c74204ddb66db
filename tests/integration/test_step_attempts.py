"""Every attempt of a step is kept (migration 0010): the record statements move a replaced
'retrying' record into ``earlier_attempts`` in the same statement, once per attempt number
however often the same record is written, and the claim's records stay without it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from durable._store.pool import ConnectionPool
from durable._store.record_writer import StepWrite
from durable._store.run_inserts import NewRun
from durable._store.store import Store

pytestmark = pytest.mark.anyio

KEY = "step:flaky#0"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=2)
    await pool.open()
    try:
        yield Store(pool)
    finally:
        await pool.close()


async def _claimed(store: Store) -> tuple[uuid.UUID, int]:
    await store.insert_run(NewRun(uuid.uuid4(), "wf", 1, '{"args":[],"kwargs":{}}', "default"))
    [row] = await store.claim("w1", 30.0, 1, ["default"], ["wf"], [1])
    return row.id, row.attempt


def _failed(run: tuple[uuid.UUID, int], attempt: int, key: str = KEY) -> StepWrite:
    error = json.dumps({"type": "builtins.ConnectionError", "message": f"down {attempt}"})
    return StepWrite(
        run[0], run[1], key, 0, "step", "flaky", "retrying",
        error_json=error, step_attempt=attempt, retry_in=0.0,
    )  # fmt: skip


def _completed(run: tuple[uuid.UUID, int], attempt: int, key: str = KEY) -> StepWrite:
    return StepWrite(
        run[0], run[1], key, 0, "step", "flaky", "completed", output_json='"ok"',
        step_attempt=attempt,
    )  # fmt: skip


async def _earlier(store: Store, run_id: uuid.UUID, key: str = KEY) -> list[dict[str, object]]:
    _, steps, _, _ = await store.get_run(run_id)
    [row] = [s for s in steps if s["cursor_key"] == key]
    found: list[dict[str, object]] = json.loads(row["earlier_attempts"])
    return found


async def test_each_replaced_attempt_is_kept_once_in_order(store: Store) -> None:
    run = await _claimed(store)
    assert await store.record_step(_failed(run, 1))
    assert await _earlier(store, run[0]) == []
    assert await store.record_step(_failed(run, 2))
    # The same record again (a write retried after its commit): attempt 2 is not added.
    assert await store.record_step(_failed(run, 2))
    assert await store.record_steps([_failed(run, 2)])
    assert await store.record_step(_completed(run, 3))
    # A completed record is final: a second write changes nothing.
    assert not await store.record_step(_completed(run, 3))
    earlier = await _earlier(store, run[0])
    assert [(a["attempt"], a["error"]) for a in earlier] == [
        (1, {"type": "builtins.ConnectionError", "message": "down 1"}),
        (2, {"type": "builtins.ConnectionError", "message": "down 2"}),
    ]
    assert all(a["started_at"] is None and a["finished_at"] for a in earlier)


async def test_the_combined_write_keeps_attempts_too(store: Store) -> None:
    run = await _claimed(store)
    assert await store.record_steps([_failed(run, 1), _completed(run, 1, "step:once#0")])
    written = await store.record_steps([_completed(run, 2)])
    assert written == {(run[0], KEY)}
    assert [a["attempt"] for a in await _earlier(store, run[0])] == [1]
    # A call that completed at its first attempt has no earlier attempts.
    assert await _earlier(store, run[0], "step:once#0") == []


async def test_the_claim_carries_no_earlier_attempts(store: Store) -> None:
    run = await _claimed(store)
    assert await store.record_step(_failed(run, 1))
    assert await store.record_step(_failed(run, 2))
    await store.release("w1", [run[0]])
    [row] = await store.claim("w1", 30.0, 1, ["default"], ["wf"], [1])
    [record] = json.loads(row.records)
    assert record["attempt"] == 2
    assert "earlier_attempts" not in record
