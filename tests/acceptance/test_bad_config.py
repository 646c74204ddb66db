"""Bad configuration never kills a worker (invariant 8).

A limit that could not be used is refused by ``queues.configure`` and nothing is stored;
a bad row already stored (written by hand or by an older version) makes the workers skip
that queue, say so once, and keep serving the other queues, until the row is fixed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import asyncpg
import pytest

from durable import Engine, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@step(name="bad_config.echo")
async def echo(label: str) -> str:
    return label


@workflow(name="bad_config.good", queue="good")
async def good(label: str) -> str:
    return await echo(label)


@workflow(name="bad_config.bad", queue="bad")
async def bad(label: str) -> str:
    return await echo(label)


WORKFLOWS = [good, bad]


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"rate_limit": (1, math.inf)}, ValueError, "rate_limit"),
        ({"rate_limit": (1, math.nan)}, ValueError, "rate_limit"),
        ({"rate_limit": (1, 1e300)}, ValueError, "rate_limit"),
        ({"rate_limit": (1 << 40, 1.0)}, ValueError, "rate_limit"),
        ({"rate_limit": (True, 1.0)}, TypeError, "rate_limit"),
        ({"concurrency": 2.5}, TypeError, "concurrency"),
        ({"concurrency": True}, TypeError, "concurrency"),
        ({"concurrency": math.inf}, TypeError, "concurrency"),
        ({"concurrency": 1 << 31}, ValueError, "concurrency"),
        ({"key_concurrency": 1.5}, TypeError, "key_concurrency"),
        ({"key_concurrency": None}, TypeError, "key_concurrency"),
    ],
    ids=repr,
)
async def test_configure_refuses_a_limit_a_worker_could_not_use_and_stores_nothing(
    database_url: str, options: dict[str, Any], error: type, names: str
) -> None:
    async with Engine(database_url, worker=False, workflows=WORKFLOWS) as client:
        with pytest.raises(error, match=names):
            await client.queues.configure("bad", **options)
        assert await client.queues.list() == []
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.queues") == 0


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"priority": 1.5}, TypeError, "priority"),
        ({"priority": 1 << 40}, ValueError, "priority"),
        ({"delay": math.inf}, ValueError, "delay"),
        ({"delay": 1e15}, ValueError, "delay"),
    ],
    ids=repr,
)
async def test_start_refuses_a_bad_option_and_stores_no_run(
    database_url: str, options: dict[str, Any], error: type, names: str
) -> None:
    async with Engine(database_url, worker=False, workflows=WORKFLOWS) as client:
        with pytest.raises(error, match=names):
            await client.start(good, "never", **options)
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.runs") == 0


def _queue_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "durable.worker" and r.levelno >= logging.ERROR and "'bad'" in r.message
    ]


def _other_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and "'bad'" not in r.getMessage()
    ]


@pytest.mark.parametrize("period", ["infinity", "NaN"])
async def test_a_bad_stored_queue_row_is_skipped_once_logged_and_other_queues_are_served(
    database_url: str,
    make_engine: EngineFactory,
    caplog: pytest.LogCaptureFixture,
    period: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:  # what an older version (or a hand-written UPDATE) could have stored
        await conn.execute(
            "INSERT INTO durable.queues (name, rate_limit, rate_period_seconds)"
            f" VALUES ('bad', 1, '{period}'::float8)",
        )
        # A start recorded under the old limits: the idle worker's next-wake query reads it.
        await conn.execute(
            "INSERT INTO durable.queue_starts (queue, run_id) VALUES ('bad', gen_random_uuid())"
        )
    finally:
        await conn.close()
    caplog.set_level(logging.INFO, logger="durable")

    async with make_engine(*WORKFLOWS) as engine:
        stuck = await engine.start(bad, "stuck")
        # Every claim pass tries the bad queue; these runs take several passes.
        for n in range(3):
            assert await (await engine.start(good, f"good-{n}")).result(timeout=30) == f"good-{n}"
        assert engine.worker is not None
        assert engine.worker.running
        assert await stuck.status() == "pending"
        errors = _queue_errors(caplog)
        assert len(errors) == 1, [r.message for r in errors]
        assert "rate_limit" in errors[0].message
        assert _other_errors(caplog) == []  # the rest of the worker is not bothered by it

        await engine.queues.configure("bad", rate_limit=(10, 1.0))  # fixed: served again
        assert await stuck.result(timeout=30) == "stuck"
    assert len(_queue_errors(caplog)) == 1
