"""A URL naming several servers works everywhere a URL goes: the engine (pool, LISTEN
connection, migrations), its worker, and the command line. Here the first server named is
down, as a dead primary is after a failover; the second answers."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest

from durable import Engine, step, workflow
from durable.cli import main

pytestmark = pytest.mark.anyio


@step
async def double(n: int) -> int:
    return 2 * n


@workflow(name="multi_host.twice")
async def twice(n: int) -> int:
    return await double(await double(n))


def _dead_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there afterwards
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _behind_a_dead_host(database_url: str) -> str:
    parts = urlsplit(database_url)
    user, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        pytest.skip("the test server is reached through a unix socket, not a host")
    return urlunsplit(parts._replace(netloc=f"{user}{at}127.0.0.1:{_dead_port()},{hosts}"))


async def test_an_engine_on_a_multi_host_url_serves_runs_and_listens(database_url: str) -> None:
    url = _behind_a_dead_host(database_url)
    async with Engine(url, workflows=[twice], poll_interval=0.2) as engine:
        assert engine.runtime.listener.connected
        handle = await engine.start(twice, 5)
        assert await handle.result(timeout=30) == 20
        assert (await engine.get_run(handle.run_id)).status == "completed"


async def test_the_command_line_takes_a_multi_host_url(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _behind_a_dead_host(database_url)
    assert await anyio.to_thread.run_sync(main, ["migrate", "--database-url", url]) == 0
    assert "up to date" in capsys.readouterr().out
    code = await anyio.to_thread.run_sync(main, ["runs", "list", "--database-url", url])
    assert code == 0, capsys.readouterr().err


async def test_the_command_line_reads_the_primary_when_the_replica_is_down(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = f"postgresql://reader:hunter2secret@127.0.0.1:{_dead_port()}/replica"
    argv = ["runs", "list", "--database-url", database_url, "--read-url", replica]
    code = await anyio.to_thread.run_sync(main, argv)
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "hunter2secret" not in said.out + said.err
