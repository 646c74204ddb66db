"""The ``durable`` command line, driven as a subprocess (``python -m durable``) for every
command, against this test's database. Runs are set up by an in-process engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable import Engine, NonRetryableError, RunStatus, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.conftest import dsn_for_database

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
BROKEN: set[str] = set()


@step
async def load(n: int) -> int:
    if "load" in BROKEN:
        raise NonRetryableError("the loader is down")
    return n + 1


@workflow(name="tests.cli.job")
async def job(n: int) -> int:
    child_value = await leaf(n)
    return await load(child_value)


@workflow(name="tests.cli.leaf")
async def leaf(n: int) -> int:
    return n * 10


@workflow(name="tests.cli.approval")
async def approval() -> str:
    answer: str = await durable.wait_for_signal("approve")
    return answer


@workflow(name="tests.cli.nightly")
async def nightly() -> str:
    return "done"


WORKFLOWS = [job, leaf, approval, nightly]


def durable_cli(
    database_url: str | None, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m durable [--database-url URL] args...`` and capture its output."""
    command = [sys.executable, "-m", "durable", *args]
    if database_url is not None:
        command += ["--database-url", database_url]
    environment = {
        k: v
        for k, v in os.environ.items()
        if "DATABASE_URL" not in k and k not in ("FORCE_COLOR", "NO_COLOR")
    }
    environment.update(env or {})
    return subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=environment, timeout=60,
        check=False,
    )  # fmt: skip


async def cli(database_url: str | None, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return await anyio.to_thread.run_sync(lambda: durable_cli(database_url, *args, **kw))


@pytest.fixture(autouse=True)
def _fixed() -> None:
    BROKEN.clear()


# -- usage -------------------------------------------------------------------------------------


async def test_usage_errors_exit_2_with_a_message(database_url: str) -> None:
    assert (await cli(None)).returncode == 2
    bad_id = await cli(database_url, "runs", "show", "not-a-run")
    assert bad_id.returncode == 2
    assert "not a run id" in bad_id.stderr
    bad_age = await cli(database_url, "runs", "list", "--since", "yesterday-ish")
    assert bad_age.returncode == 2
    assert "an age (30m, 12h, 7d)" in bad_age.stderr
    bad_json = await cli(database_url, "runs", "signal", str(uuid.uuid4()), "go", "{oops")
    assert bad_json.returncode == 2
    assert "the payload must be JSON" in bad_json.stderr
    help_text = await cli(None, "--help")
    assert help_text.returncode == 0
    assert "worker" in help_text.stdout
    assert "schedules" in help_text.stdout


async def test_an_unreachable_database_exits_1_with_a_hint() -> None:
    result = await cli("postgresql://someone:secret@127.0.0.1:1/nowhere", "runs", "list")
    assert result.returncode == 1
    assert "database error" in result.stderr
    assert "secret" not in result.stderr  # the password is redacted
    assert "--database-url" in result.stderr


# -- migrate -----------------------------------------------------------------------------------


@pytest.fixture
async def empty_database(server_dsn: str) -> AsyncIterator[str]:
    name = f"durable_cli_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield dsn_for_database(server_dsn, name)
    finally:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def test_migrate_dry_run_prints_the_pending_sql_then_migrate_applies_it(
    empty_database: str,
) -> None:
    dry = await cli(empty_database, "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "-- migration 0001_initial" in dry.stdout
    assert "CREATE TABLE durable.runs" in dry.stdout
    assert "-- migration 0003_operations" in dry.stdout
    schema = await support.count_rows(
        empty_database, "SELECT count(*) FROM pg_namespace WHERE nspname = 'durable'"
    )
    assert schema == 0  # a dry run changes nothing
    applied = await cli(empty_database, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert "applied migrations [1, 2, 3" in applied.stdout
    again = await cli(empty_database, "migrate", "--dry-run")
    assert "no pending migrations" in again.stdout
    assert "up to date" in (await cli(empty_database, "migrate")).stdout


# -- runs ----------------------------------------------------------------------------------------


async def test_runs_list_filters_and_colours(engine: Engine, database_url: str) -> None:
    ok = await engine.start(job, 1, tags=["tenant:acme"])
    assert await ok.result(timeout=5) == 11
    BROKEN.add("load")
    bad = await engine.start(job, 2)
    await support.wait_for_status(bad, "failed")

    listed = await cli(database_url, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    assert str(ok.run_id) in listed.stdout
    assert str(bad.run_id) in listed.stdout
    assert "\x1b[" not in listed.stdout  # not a terminal: no colours
    assert listed.stdout.splitlines()[0].split()[:3] == ["RUN", "ID", "WORKFLOW"]

    failed = await cli(database_url, "runs", "list", "--status", "failed", "--since", "1h")
    assert str(bad.run_id) in failed.stdout
    assert str(ok.run_id) not in failed.stdout
    tagged = await cli(database_url, "runs", "list", "--tag", "tenant:acme", "--json")
    items = json.loads(tagged.stdout)["items"]
    assert [i["run_id"] for i in items] == [str(ok.run_id)]
    assert items[0]["status"] == "completed"
    children = await cli(database_url, "runs", "list", "--parent", str(ok.run_id), "--json")
    assert [i["workflow"] for i in json.loads(children.stdout)["items"]] == ["tests.cli.leaf"]

    coloured = await cli(database_url, "runs", "list", env={"FORCE_COLOR": "1"})
    assert "\x1b[31mfailed" in coloured.stdout  # failed in red
    assert "\x1b[32mcompleted" in coloured.stdout
    none = await cli(database_url, "runs", "list", "--workflow", "no.such")
    assert none.returncode == 0
    assert "no runs match" in none.stdout


async def test_runs_show_prints_the_timeline_errors_and_children(
    engine: Engine, database_url: str
) -> None:
    BROKEN.add("load")
    handle = await engine.start(job, 3)
    await support.wait_for_status(handle, "failed")
    shown = await cli(database_url, "runs", "show", str(handle.run_id))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "status    failed" in out
    assert "child:tests.cli.leaf#0" in out
    assert "step:load#0" in out
    assert "NonRetryableError: the loader is down" in out
    assert "children" in out
    (child_id,) = (await handle.detail()).children
    assert str(child_id) in out
    assert "TOOK" in out
    as_json = json.loads((await cli(database_url, "runs", "show", str(handle.run_id),
                                    "--json")).stdout)  # fmt: skip
    assert [s["cursor_key"] for s in as_json["steps"]] == ["child:tests.cli.leaf#0", "step:load#0"]
    missing = await cli(database_url, "runs", "show", str(uuid.uuid4()))
    assert missing.returncode == 1
    assert "no run with id" in missing.stderr


async def test_runs_retry_fork_cancel_signal_pause_resume(
    engine: Engine, database_url: str
) -> None:
    BROKEN.add("load")
    failed = await engine.start(job, 4)
    await support.wait_for_status(failed, "failed")
    BROKEN.clear()
    retried = await cli(database_url, "runs", "retry", str(failed.run_id))
    assert retried.returncode == 0, retried.stderr
    assert "queued run" in retried.stdout
    assert await failed.result(timeout=5) == 41
    shown = await cli(database_url, "runs", "show", str(failed.run_id))
    assert "failed attempts retried\n  1. durable.errors.NonRetryableError: the loader is down" in (
        shown.stdout
    )
    again = await cli(database_url, "runs", "retry", str(failed.run_id))
    assert again.returncode == 1
    assert "is completed, not failed: nothing to retry" in again.stderr

    forked = await cli(database_url, "runs", "fork", str(failed.run_id), "--from-step",
                       "step:load#0")  # fmt: skip
    assert forked.returncode == 0, forked.stderr
    fork = engine.handle(forked.stdout.strip())
    assert await fork.result(timeout=5) == 41
    assert (await fork.detail()).forked_from == failed.run_id
    bad_key = await cli(database_url, "runs", "fork", str(failed.run_id), "--from-step", "x#0")
    assert bad_key.returncode == 1
    assert "no record at cursor key 'x#0'" in bad_key.stderr

    waiting = await engine.start(approval)
    await support.wait_for_status(waiting, "waiting")
    paused = await cli(database_url, "runs", "pause", str(waiting.run_id))
    assert paused.returncode == 0, paused.stderr
    assert await waiting.status() == RunStatus.PAUSED
    assert (await cli(database_url, "runs", "pause", str(waiting.run_id))).returncode == 1
    assert (await cli(database_url, "runs", "resume", str(waiting.run_id))).returncode == 0
    sent = await cli(database_url, "runs", "signal", str(waiting.run_id), "approve", '"yes"')
    assert sent.returncode == 0, sent.stderr
    assert "signal 'approve'" in sent.stdout
    assert await waiting.result(timeout=5) == "yes"
    late = await cli(database_url, "runs", "signal", str(waiting.run_id), "approve", "1")
    assert late.returncode == 1
    assert "run_finished" in late.stderr

    doomed = await engine.start(approval)
    cancelled = await cli(database_url, "runs", "cancel", str(doomed.run_id))
    assert cancelled.returncode == 0, cancelled.stderr
    assert await doomed.status() == RunStatus.CANCELLED
    twice = await cli(database_url, "runs", "cancel", str(doomed.run_id))
    assert twice.returncode == 1
    assert "it is cancelled" in twice.stderr
    unknown = await cli(database_url, "runs", "cancel", str(uuid.uuid4()))
    assert unknown.returncode == 1
    assert "no run with id" in unknown.stderr


# -- schedules -------------------------------------------------------------------------------------


async def test_schedules_list_pause_resume_trigger_delete(
    engine: Engine, database_url: str
) -> None:
    await engine.schedules.create("nightly", nightly, "0 2 * * *", timezone="Europe/Paris")
    listed = await cli(database_url, "schedules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "nightly" in listed.stdout
    assert "0 2 * * * (Europe/Paris)" in listed.stdout
    assert "active" in listed.stdout
    assert (await cli(database_url, "schedules", "pause", "nightly")).returncode == 0
    data = json.loads((await cli(database_url, "schedules", "list", "--json")).stdout)
    assert data[0]["paused"] is True
    resumed = await cli(database_url, "schedules", "resume", "nightly")
    assert resumed.returncode == 0
    assert "resumed schedule nightly" in resumed.stdout
    triggered = await cli(database_url, "schedules", "trigger", "nightly")
    assert triggered.returncode == 0, triggered.stderr
    handle = engine.handle(triggered.stdout.strip())
    assert await handle.result(timeout=5) == "done"
    assert (await handle.detail()).tags == ["schedule:nightly"]
    assert (await cli(database_url, "schedules", "delete", "nightly")).returncode == 0
    gone = await cli(database_url, "schedules", "pause", "nightly")
    assert gone.returncode == 1
    assert "no schedule named 'nightly'" in gone.stderr
    assert "no schedules" in (await cli(database_url, "schedules", "list")).stdout


# -- worker ---------------------------------------------------------------------------------


async def _serve_until_sigterm(
    database_url: str, app: str, make_engine: EngineFactory, processes: int
) -> None:
    command = [sys.executable, "-m", "durable", "worker", "--app", app, "--concurrency", "2",
               "--database-url", database_url, "--processes", str(processes)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    process = await anyio.open_process(command, cwd=ROOT, env=env)
    try:
        assert process.stdout is not None
        banner = b""
        with anyio.fail_after(60):
            while banner.count(b" serving ") < processes:
                banner += await process.stdout.receive()
        if processes > 1:
            assert f"running {processes} worker processes".encode() in banner
        assert b"tests.cli_app.double" in banner
        assert b"concurrency 2" in banner
        async with make_engine(worker=False) as client:
            handle = await client.start("tests.cli_app.double", 21)
            assert await handle.result(timeout=10) == 42
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


async def test_worker_serves_a_list_of_workflows_until_sigterm(
    database_url: str, make_engine: EngineFactory
) -> None:
    await _serve_until_sigterm(
        database_url, "tests.acceptance.cli_app:WORKFLOWS", make_engine, processes=1
    )


async def test_worker_serves_an_app_engine(database_url: str, make_engine: EngineFactory) -> None:
    await _serve_until_sigterm(
        database_url, "tests.acceptance.cli_app:engine", make_engine, processes=2
    )


async def test_worker_serves_an_app_engine_built_as_a_client(
    database_url: str, make_engine: EngineFactory
) -> None:
    await _serve_until_sigterm(
        database_url, "tests.acceptance.cli_app:client", make_engine, processes=2
    )


async def test_worker_usage_errors(database_url: str) -> None:
    missing = await cli(database_url, "worker", "--app", "no_such_module_xyz")
    assert missing.returncode == 2
    assert "cannot import --app module 'no_such_module_xyz'" in missing.stderr
    no_attr = await cli(database_url, "worker", "--app", "tests.acceptance.cli_app:nope")
    assert no_attr.returncode == 2
    assert "has no attribute 'nope'" in no_attr.stderr
    wrong = await cli(database_url, "worker", "--app", "tests.acceptance.cli_app:not_an_app")
    assert wrong.returncode == 2
    assert "must name an Engine, a @workflow or a list of them, not int" in wrong.stderr
    zero = await cli(database_url, "worker", "--app", "tests.acceptance.cli_app", "--concurrency",
                     "0")  # fmt: skip
    assert zero.returncode == 2
    assert "expected a positive integer" in zero.stderr
    app = ("--app", "tests.acceptance.cli_app:WORKFLOWS")
    no_processes = await cli(database_url, "worker", *app, "--processes", "0")
    assert no_processes.returncode == 2
    assert "expected a positive integer" in no_processes.stderr
    bad_timeout = await cli(database_url, "worker", *app, "--stop-timeout", "-1")
    assert bad_timeout.returncode == 2
    assert "expected a duration such as 60 or 2m" in bad_timeout.stderr
    # With several processes a bad --app fails once, in the supervisor, before any child.
    many = await cli(database_url, "worker", "--app", "no_such_module_xyz", "--processes", "3")
    assert many.returncode == 2
    assert many.stderr.count("cannot import --app module") == 1
    assert "worker processes" not in many.stdout
