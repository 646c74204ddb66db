"""Replay testing: histories exported from real runs, replayed against changed code with no
database, and the ``durable replay`` gate a deploy can wait on.

The in-process workflow ``order`` changes its code through ``CODE`` (as a deploy would);
the CLI tests use two app modules, ``replay_app_v1`` and ``replay_app_v2`` (steps swapped).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import pytest

import durable
from durable import NonDeterminismError, NonRetryableError, step, workflow
from durable.testing import History, InvalidHistory, Replayer
from tests.acceptance import replay_app_v1
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS, wait_for_status

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
CODE: dict[str, Any] = {}
"""The deployed code's variations, reset before each test."""


@pytest.fixture(autouse=True)
def _first_version() -> Iterator[None]:
    CODE.clear()
    CODE.update(swap=False, patch=False, unguarded=False, result="v1", fail=False)
    yield
    CODE.clear()


@step(name="tests.replay.reserve")
async def reserve(item: str) -> str:
    CALLS["reserve"] += 1
    return f"reserved {item}"


@step(name="tests.replay.charge")
async def charge(item: str) -> int:
    CALLS["charge"] += 1
    if CODE["fail"]:
        raise NonRetryableError(f"card declined for {item}")
    return 42


@step(name="tests.replay.send_receipt")
async def send_receipt(item: str) -> str:
    CALLS["send_receipt"] += 1
    return f"receipt for {item}"


@step(name="tests.replay.ship")
async def ship(item: str) -> str:
    CALLS["ship"] += 1
    return f"shipped {item}"


@workflow(name="tests.replay.order")
async def order(item: str, wait: str = "0s") -> dict[str, Any]:
    if CODE["swap"]:
        charged = await charge(item)
        reserved = await reserve(item)
    else:
        reserved = await reserve(item)
        charged = await charge(item)
    receipt = None
    if CODE["unguarded"] or (CODE["patch"] and durable.patched("send-receipt")):
        receipt = await send_receipt(item)
    await durable.sleep(wait)  # "1h" parks the run: an in-flight history ends here
    shipped = await ship(item)
    return {"reserved": reserved, "charged": charged, "receipt": receipt,
            "shipped": shipped, "code": CODE["result"]}  # fmt: skip


@workflow(name="tests.replay.approval")
async def approval(item: str) -> str:
    approved = await durable.wait_for_signal("approve", type=bool)
    return f"{item} {'approved' if approved else 'rejected'} at {durable.now().year}"


WORKFLOWS = [order, approval]
REPLAYER = Replayer(workflows=WORKFLOWS)


async def finished_history(make_engine: EngineFactory, *args: Any) -> History:
    async with make_engine(*WORKFLOWS) as engine:
        handle = await engine.start(order, *args)
        await handle.result(timeout=10)
        return await engine.export_run(handle.run_id)


async def sleeping_history(make_engine: EngineFactory) -> History:
    async with make_engine(*WORKFLOWS) as engine:
        handle = await engine.start(order, "lamp", "1h")
        await wait_for_status(handle, "sleeping")
        return await engine.export_run(handle.run_id)


# -- export ---------------------------------------------------------------------------------


async def test_an_exported_history_replays_clean_against_the_same_code(
    make_engine: EngineFactory,
) -> None:
    history = await finished_history(make_engine, "lamp")
    document = json.loads(history.to_json())
    assert document["format"] == "durable.history"
    assert document["format_version"] == 1
    assert (document["workflow"], document["version"]) == ("tests.replay.order", 1)
    assert document["input"] == {"args": ["lamp"], "kwargs": {}}
    assert [r["key"] for r in document["records"]] == [
        "step:tests.replay.reserve#0", "step:tests.replay.charge#0", "sleep#0",
        "step:tests.replay.ship#0",
    ]  # fmt: skip
    assert document["records"][1]["output"] == 42
    assert document["records"][1]["attempt"] == 1
    assert document["outcome"]["status"] == "completed"
    assert document["outcome"]["output"]["shipped"] == "shipped lamp"
    assert History.from_json(history.to_json()) == history

    CALLS.clear()
    report = await REPLAYER.replay(history)
    assert report.ok, report.describe()
    assert report.outcome == "same"
    assert report.replayed == 4
    assert report.error is None
    assert sum(CALLS.values()) == 0  # replayed from the history: no step body ran


async def test_swapped_steps_report_nondeterminism_naming_the_key(
    make_engine: EngineFactory,
) -> None:
    history = await finished_history(make_engine, "lamp")
    CODE["swap"] = True
    report = await REPLAYER.replay(history)
    assert not report.ok
    error = report.nondeterminism
    assert isinstance(error, NonDeterminismError)
    assert error.cursor_key == "step:tests.replay.reserve#0"
    assert error.recorded == "step:tests.replay.reserve"
    assert error.new == "step:tests.replay.charge"
    assert report.verdict == "non-determinism"
    assert "step:tests.replay.reserve#0" in report.describe()


async def test_a_change_guarded_by_patched_replays_clean(make_engine: EngineFactory) -> None:
    old = await finished_history(make_engine, "lamp")
    in_flight = await sleeping_history(make_engine)
    CODE["patch"] = True
    for history in (old, in_flight):
        report = await REPLAYER.replay(history)
        assert report.ok, report.describe()
        assert report.patches == {"send-receipt": False}  # old runs keep the old path

    new = await finished_history(make_engine, "desk")  # a run started by the new code
    assert [r.kind for r in new.records].count("patch") == 1
    report = await REPLAYER.replay(new)
    assert report.ok, report.describe()
    assert report.patches == {"send-receipt": True}

    CODE.update(patch=False, unguarded=True)  # the same change without patched()
    report = await REPLAYER.replay(in_flight)
    assert not report.ok
    assert report.nondeterminism is not None
    assert report.nondeterminism.cursor_key == "sleep#0"


async def test_a_changed_result_is_reported_as_an_outcome_mismatch(
    make_engine: EngineFactory,
) -> None:
    history = await finished_history(make_engine, "lamp")
    CODE["result"] = "v2"
    report = await REPLAYER.replay(history)
    assert not report.ok
    assert report.outcome == "different"
    assert report.nondeterminism is None
    assert '"code": "v2"' in report.detail
    assert '"code": "v1"' in report.detail


async def test_an_in_flight_history_replays_up_to_its_end(make_engine: EngineFactory) -> None:
    history = await sleeping_history(make_engine)
    assert history.status == "sleeping"
    assert not history.finished
    report = await REPLAYER.replay(history)
    assert report.ok, report.describe()
    assert report.outcome == "incomplete"
    assert report.stopped_at == "sleep#0"
    assert CALLS["ship"] == 0  # the step after the parked sleep never ran

    CODE["swap"] = True
    assert not (await REPLAYER.replay(history)).ok


async def test_a_failed_run_replays_to_the_same_error(make_engine: EngineFactory) -> None:
    CODE["fail"] = True
    async with make_engine(*WORKFLOWS) as engine:
        handle = await engine.start(order, "lamp")
        with pytest.raises(durable.WorkflowFailed):
            await handle.result(timeout=10)
        history = await engine.export_run(handle.run_id)
    assert history.status == "failed"
    report = await REPLAYER.replay(history)
    assert report.ok, report.describe()
    assert report.outcome == "same"

    CODE["fail"] = False  # the replay uses the recorded failure, never the new step body
    assert (await REPLAYER.replay(history)).outcome == "same"


async def test_signals_and_recorded_values_replay(make_engine: EngineFactory) -> None:
    async with make_engine(*WORKFLOWS) as engine:
        waiting = await engine.start(approval, "lamp")
        await wait_for_status(waiting, "waiting")
        waiting_history = await engine.export_run(waiting.run_id)
        done = await engine.start(approval, "desk")
        await done.signal("approve", True)
        await done.result(timeout=10)
        done_history = await engine.export_run(done.run_id)
    assert [s.consumed_by for s in done_history.signals] == ["signal:approve#0"]

    report = await REPLAYER.replay(done_history)
    assert report.ok, report.describe()
    assert report.outcome == "same"
    report = await REPLAYER.replay(waiting_history)
    assert report.ok, report.describe()
    assert (report.outcome, report.stopped_at) == ("incomplete", "signal:approve#0")


# -- no database ------------------------------------------------------------------------------

_NO_NETWORK = """
import asyncio, socket, sys
import anyio, asyncpg
opened = []
def refuse(what):
    def connect(*args, **kwargs):
        opened.append(what)
        raise OSError(f"replay opened a connection ({what})")
    return connect
asyncpg.connect = refuse("asyncpg.connect")
asyncio.BaseEventLoop.create_connection = refuse("create_connection")
asyncio.BaseEventLoop.create_unix_connection = refuse("create_unix_connection")
socket.socket.connect = refuse("socket.connect")
from durable.testing import Replayer
from tests.acceptance.replay_app_v1 import order
report = anyio.run(Replayer(workflows=[order]).replay, sys.argv[1])
assert report.ok and report.outcome == "same", report.describe()
assert opened == [], opened
print("replayed", report.replayed, "calls without a connection")
"""


async def test_replay_makes_no_database_connection(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    async with make_engine(replay_app_v1.order) as engine:
        handle = await engine.start(replay_app_v1.order, "lamp")
        await handle.result(timeout=10)
        path = (await engine.export_run(handle.run_id)).save(tmp_path / "run.json")
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    result = await anyio.run_process(
        [sys.executable, "-c", textwrap.dedent(_NO_NETWORK), str(path)],
        cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert b"replayed 3 calls without a connection" in result.stdout


# -- the command line ----------------------------------------------------------------------------


async def durable_cli(*args: str, database_url: str | None = None) -> Completed:
    """``python -m durable args...`` with no database URL in its environment."""
    command = [sys.executable, "-m", "durable", *args]
    if database_url is not None:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    with anyio.fail_after(120):
        done = await anyio.run_process(command, cwd=ROOT, env=env, check=False)
    return Completed(done.returncode, done.stdout.decode(), done.stderr.decode())


@asynccontextmanager
async def read_only_role(database_url: str) -> AsyncIterator[str]:
    """A URL of the test database as a new role that may only read the durable schema."""
    role = f"durable_reader_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute(f"GRANT USAGE ON SCHEMA durable TO {role}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA durable TO {role}")
        parts = urlsplit(database_url)
        host = parts.netloc.rpartition("@")[2]
        yield urlunsplit(parts._replace(netloc=f"{role}@{host}"))
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")
        await conn.close()


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def json_stems(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json"))


V1 = "tests.acceptance.replay_app_v1:engine"
V2 = "tests.acceptance.replay_app_v2:engine"


async def test_the_replay_gate_passes_compatible_code_and_fails_incompatible_code(
    make_engine: EngineFactory, database_url: str, tmp_path: Path
) -> None:
    async with make_engine(replay_app_v1.order) as engine:
        done = await engine.start(replay_app_v1.order, "lamp")
        await done.result(timeout=10)
        parked = await engine.start(replay_app_v1.order, "desk", 3600.0)
        await wait_for_status(parked, "sleeping")

    async with read_only_role(database_url) as reader_url:  # the gate only reads
        same = await durable_cli("replay", "--app", V1, "--from-db", database_url=reader_url)
    assert same.returncode == 0, same.stdout + same.stderr
    assert str(done.run_id) in same.stdout
    assert str(parked.run_id) in same.stdout
    assert "2 run(s) replayed: 2 ok, 0 incompatible" in same.stdout

    swapped = await durable_cli("replay", "--app", V2, "--from-db", "--workflow",
                          "tests.replay_app.order", database_url=database_url)  # fmt: skip
    assert swapped.returncode == 1, swapped.stdout + swapped.stderr
    assert "non-determinism" in swapped.stdout
    assert "step:replay_app.reserve#0" in swapped.stdout

    one = await durable_cli("runs", "export", str(parked.run_id), database_url=database_url)
    assert one.returncode == 0, one.stderr
    assert History.from_json(one.stdout).status == "sleeping"
    many = await durable_cli("runs", "export", "--workflow", "tests.replay_app.order", "--since",
                       "1h", "--dir", str(tmp_path), database_url=database_url)  # fmt: skip
    assert many.returncode == 0, many.stderr
    assert json_stems(tmp_path) == sorted([str(done.run_id), str(parked.run_id)])
    # From files: no database at all (no URL anywhere in the environment).
    assert (await durable_cli("replay", "--app", V1, "--dir", str(tmp_path))).returncode == 0
    assert (await durable_cli("replay", "--app", V2, "--dir", str(tmp_path))).returncode == 1


async def test_a_corrupt_or_foreign_history_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "durable.history", "format_version": 1, "run_id": ')
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"kind": "temporal-history", "events": []}))
    for path, words in ((corrupt, "is not JSON"), (foreign, "not a durable run history")):
        with pytest.raises(InvalidHistory, match=words) as caught:
            await REPLAYER.replay(path)
        assert isinstance(caught.value, ValueError)
        result = await durable_cli("replay", "--app", V1, str(path))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("durable: ")
        assert words in lines[0]
        assert "Traceback" not in result.stderr
