"""Workflows for the chaos tests, and a worker process that serves them until it is killed.

    python -m tests.chaos.worker_app <database_url>

Every step body appends ``<event> <pid>`` lines to the file named by ``DURABLE_CHAOS_MARKS``
(one ``write`` per line on an ``O_APPEND`` file, so lines from several processes never
interleave): the tests count executions across processes from it. The ``charge`` step's
body sleeps ``DURABLE_CHAOS_SLOW_SECONDS`` (default 0) between its start and end marks, which
is where the first worker gets killed. ``chaos.ten_steps`` runs ten ``chaos.tick`` steps
of ``DURABLE_CHAOS_TICK_SECONDS`` each (default 0), the load of the soak and termination tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio

from durable import Engine, step, workflow
from tests.chaos.worker_main import run_worker

MARKS_ENV = "DURABLE_CHAOS_MARKS"
SLOW_ENV = "DURABLE_CHAOS_SLOW_SECONDS"
TICK_ENV = "DURABLE_CHAOS_TICK_SECONDS"
MAX_ATTEMPTS_ENV = "DURABLE_CHAOS_MAX_RUN_ATTEMPTS"
CONCURRENCY_ENV = "DURABLE_CHAOS_CONCURRENCY"
LEASE_SECONDS = 2.0
HEARTBEAT_SECONDS = 0.5
POLL_INTERVAL = 0.2


def mark(event: str) -> None:
    """Append ``event`` with this process id to the marks file (if one is configured)."""
    path = os.environ.get(MARKS_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def read_marks(path: Path) -> list[tuple[str, int]]:
    """The (event, pid) pairs written so far, in order."""
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text().splitlines():
        event, _, pid = line.rpartition(" ")
        pairs.append((event, int(pid)))
    return pairs


@step(name="chaos.prepare")
async def prepare(order: str) -> str:
    mark("prepare:start")
    mark("prepare:end")
    return f"prepared {order}"


@step(name="chaos.charge")
async def charge(order: str) -> str:
    mark("charge:start")
    await anyio.sleep(float(os.environ.get(SLOW_ENV, "0")))
    mark("charge:end")
    return f"charged {order}"


@workflow(name="chaos.checkout")
async def checkout(order: str) -> list[str]:
    """Two steps: the worker is killed after the first is recorded, inside the second."""
    prepared = await prepare(order)
    charged = await charge(order)
    return [prepared, charged]


@step(name="chaos.echo")
async def echo(value: str) -> str:
    mark("echo")
    return value


@workflow(name="chaos.echo_flow")
async def echo_flow(value: str) -> str:
    return await echo(value)


TEN_STEPS = 10


@step(name="chaos.tick")
async def tick(order: str, i: int) -> str:
    """One of ten: marks ``tick <order> <i> <start time>`` so a test can tell a body that
    ran again after its record committed (start time later than the record's)."""
    mark(f"tick {order} {i} {time.time():.6f}")
    await anyio.sleep(float(os.environ.get(TICK_ENV, "0")))
    return f"{order}:{i}"


@workflow(name="chaos.ten_steps")
async def ten_steps(order: str) -> list[str]:
    return [await tick(order, i) for i in range(TEN_STEPS)]


@step(name="chaos.hang")
async def hang() -> str:
    mark("hang:start")
    await anyio.sleep_forever()
    return "unreachable"


@workflow(name="chaos.poison")
async def poison() -> str:
    """Records nothing before its step hangs: every worker running it is killed there."""
    return await hang()


WORKFLOWS = [checkout, echo_flow, ten_steps, poison]


async def serve(database_url: str) -> None:
    async with Engine(
        database_url,
        workflows=WORKFLOWS,
        lease_seconds=LEASE_SECONDS,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        poll_interval=POLL_INTERVAL,
        shutdown_grace_seconds=0,
        max_run_attempts=int(os.environ.get(MAX_ATTEMPTS_ENV, "10")),
        concurrency=int(os.environ.get(CONCURRENCY_ENV, "16")),
    ) as engine:
        worker_id = engine.runtime.worker_id
        print(f"worker {worker_id} ready (pid {os.getpid()})", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    run_worker(serve, "tests.chaos.worker_app")
