"""``durable runs`` for operators: id prefixes, the wide listing, ``show``, ``watch``,
``fast-forward``, bulk ``retry`` and ``--json`` everywhere. Driven as a subprocess like
``test_cli.py``, against runs set up by an in-process engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
import pytest

from durable import Engine, RunStatus
from tests.acceptance import support
from tests.acceptance.dashboard_support import free_port
from tests.acceptance.test_cli import BROKEN, ROOT, approval, cli, job, leaf

pytestmark = pytest.mark.anyio

WORKFLOWS = [job, leaf, approval]


@pytest.fixture(autouse=True)
def _fixed() -> None:
    BROKEN.clear()


async def test_an_id_prefix_names_a_run_and_an_ambiguous_one_is_refused(
    engine: Engine, database_url: str
) -> None:
    first = await engine.start(approval, run_id=uuid.UUID("abcdef01-0000-4000-8000-000000000001"))
    await engine.start(approval, run_id=uuid.UUID("abcdef01-0000-4000-8000-000000000002"))
    shown = await cli(database_url, "runs", "show", "abcdef01-0000-4000-8000-0000000000")
    assert shown.returncode == 1
    assert "matches several runs" in shown.stderr
    assert "abcdef01-0000-4000-8000-000000000001" in shown.stderr
    assert "abcdef01-0000-4000-8000-000000000002" in shown.stderr
    one = await cli(database_url, "runs", "show", "abcdef01-0000-4000-8000-000000000001")
    assert one.returncode == 0, one.stderr
    unique = await cli(database_url, "runs", "cancel", "abcdef01000040008000000000000001")
    assert unique.returncode == 0, unique.stderr
    assert await first.status() == RunStatus.CANCELLED
    missing = await cli(database_url, "runs", "show", "0000000f")
    assert missing.returncode == 1
    assert "no run with id" in missing.stderr


async def test_list_shows_waits_and_errors_and_show_is_readable(
    engine: Engine, database_url: str
) -> None:
    BROKEN.add("load")
    failed = await engine.start(job, 4)
    waiting = await engine.start(approval)
    await support.wait_for_status(failed, "failed", timeout=30)
    await support.wait_for_status(waiting, "waiting", timeout=30)
    listed = await cli(database_url, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    header = listed.stdout.splitlines()[0]
    for column in ("WAITING FOR", "WAKES", "ERROR"):
        assert column in header
    assert "signal:approve" in listed.stdout
    assert "NonRetryableError: the loader is down" in listed.stdout
    as_json = json.loads((await cli(database_url, "runs", "list", "--json")).stdout)
    mine = {item["run_id"]: item for item in as_json["items"]}
    assert mine[str(waiting.run_id)]["waiting_for"] == ["signal:approve"]

    prefix = str(failed.run_id)  # time-ordered ids share their first characters: the whole id
    shown = await cli(database_url, "runs", "show", prefix, "--full-input")
    assert shown.returncode == 0, shown.stderr
    assert " ago)" in shown.stdout  # readable times
    assert '"args": [\n' in shown.stdout  # the whole input, indented
    waiting_shown = (await cli(database_url, "runs", "show", str(waiting.run_id))).stdout
    assert "waits for signal:approve" in waiting_shown


async def test_watch_follows_a_run_until_it_finishes(engine: Engine, database_url: str) -> None:
    waiting = await engine.start(approval)
    await support.wait_for_status(waiting, "waiting", timeout=30)
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    command = [sys.executable, "-m", "durable", "runs", "watch", str(waiting.run_id)[:13],
               "--database-url", database_url]  # fmt: skip
    async with await anyio.open_process(command, cwd=ROOT, env=env) as process:
        assert process.stdout is not None
        seen = ""
        with anyio.fail_after(60):
            async for chunk in process.stdout:
                seen += chunk.decode()
                if "waiting" in seen:
                    break
            await engine.signal(waiting.run_id, "approve", "go")
            async for chunk in process.stdout:
                seen += chunk.decode()
            assert await process.wait() == 0
    assert f"run {waiting.run_id} completed" in seen
    assert "signal:approve#0" in seen


async def test_fast_forward_delivers_the_awaited_signal(engine: Engine, database_url: str) -> None:
    waiting = await engine.start(approval)
    await support.wait_for_status(waiting, "waiting", timeout=30)
    done = await cli(database_url, "runs", "fast-forward", str(waiting.run_id), '"skip"', "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kind"] == "signalled"
    assert await waiting.result(timeout=30) == "skip"
    idle = await cli(database_url, "runs", "fast-forward", str(waiting.run_id))
    assert idle.returncode == 1
    assert "not_waiting, nothing to fast-forward" in idle.stderr


async def test_bulk_retry_with_a_dry_run_first(engine: Engine, database_url: str) -> None:
    BROKEN.add("load")
    failed = [await engine.start(job, n) for n in (1, 2)]
    for handle in failed:
        await support.wait_for_status(handle, "failed", timeout=30)
    BROKEN.clear()
    usage = await cli(database_url, "runs", "retry")
    assert usage.returncode == 2
    dry = await cli(database_url, "runs", "retry", "--status", "failed", "--workflow",
                    "tests.cli.job", "--since", "1h", "--dry-run")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "would retry 2 run(s)" in dry.stdout
    for handle in failed:
        assert await handle.status() == RunStatus.FAILED
    done = await cli(database_url, "runs", "retry", "--status", "failed", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert {r["run_id"] for r in results} == {str(h.run_id) for h in failed}
    assert {r["result"] for r in results} == {"queued"}
    assert [await h.result(timeout=30) for h in failed] == [11, 21]


async def test_every_action_prints_json(engine: Engine, database_url: str) -> None:
    waiting = await engine.start(approval)
    await support.wait_for_status(waiting, "waiting", timeout=30)
    run = str(waiting.run_id)
    for args in (("pause", run), ("resume", run)):
        result = await cli(database_url, "runs", *args, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"run_id": run, "done": True, "action": args[0]}
    sent = await cli(database_url, "runs", "signal", run, "approve", '"ok"', "--json")
    assert json.loads(sent.stdout)["kind"] in ("delivered", "buffered")
    assert await waiting.result(timeout=30) == "ok"
    forked = await cli(database_url, "runs", "fork", run, "--json")
    assert uuid.UUID(json.loads(forked.stdout)["run_id"])
    await engine.schedules.create("hourly", leaf, "0 * * * *", args=[1])
    paused = await cli(database_url, "schedules", "pause", "hourly", "--json")
    assert json.loads(paused.stdout)["paused"] is True


def test_the_dashboard_command_is_listed() -> None:
    shown = subprocess.run([sys.executable, "-m", "durable", "dashboard", "--help"],
                           capture_output=True, text=True, cwd=ROOT, check=False)  # fmt: skip
    assert shown.returncode == 0
    assert "--allow-actions" in shown.stdout
    assert "127.0.0.1" in shown.stdout


async def test_the_dashboard_command_serves_and_prints_a_token(
    engine: Engine, database_url: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k and "TOKEN" not in k}
    parts = urlsplit(database_url)
    if parts.username and parts.password is None:  # a password the server ignores (trust)
        netloc = parts.netloc.replace(f"{parts.username}@", f"{parts.username}:s3cret@", 1)
        database_url = urlunsplit(parts._replace(netloc=netloc))
    command = [sys.executable, "-m", "durable", "dashboard", "--port", str(port),
               "--allow-actions", "--database-url", database_url]  # fmt: skip
    async with await anyio.open_process(command, cwd=ROOT, env=env) as process:
        assert process.stdout is not None
        said = ""
        with anyio.fail_after(60):
            async for chunk in process.stdout:
                said += chunk.decode()
                if "actions need this token" in said and said.endswith("\n"):
                    break
        token = said.split("actions need this token (or set $DURABLE_DASHBOARD_TOKEN): ")[1]
        assert len(token.strip()) >= 40
        assert f"http://127.0.0.1:{port}/" in said
        assert "s3cret" not in said
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            with anyio.fail_after(60):
                while True:
                    try:
                        page = await http.get("/runs")
                        break
                    except httpx.ConnectError:
                        await anyio.sleep(0.1)  # uvicorn binds just after the banner
            assert page.status_code == 200
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(60):
            await process.wait()
