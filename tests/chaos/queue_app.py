"""A worker process serving one workflow on the managed queue ``limited``, for the queue
limit chaos tests.

    python -m tests.chaos.queue_app <database_url>

The step body appends ``start <label> <time> <pid>`` and ``end <label> <time> <pid>`` lines
to the file named by ``DURABLE_QUEUE_MARKS`` (one ``write`` per line on an ``O_APPEND``
file, so lines from several processes never interleave) and sleeps
``DURABLE_QUEUE_STEP_SECONDS`` in between: the tests rebuild every execution's interval
from it and count how many overlapped. The worker's own ``concurrency`` is above the
queue's limit, so only the queue limit (enforced in the claim) can hold it down.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio

from durable import Engine, step, workflow
from tests.chaos.worker_main import run_worker

MARKS_ENV = "DURABLE_QUEUE_MARKS"
STEP_SECONDS_ENV = "DURABLE_QUEUE_STEP_SECONDS"
QUEUE = "limited"
WORKER_CONCURRENCY = 4
LEASE_SECONDS = 4.0  # generous: a loaded CI machine can delay heartbeats
HEARTBEAT_SECONDS = 0.5
POLL_INTERVAL = 0.2


def mark(event: str, label: str) -> None:
    path = os.environ.get(MARKS_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event} {label} {time.time():.6f} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def read_marks(path: Path) -> list[tuple[str, str, float, int]]:
    """The (event, label, time, pid) marks written so far, in file order."""
    if not path.exists():
        return []
    marks = []
    for line in path.read_text().splitlines():
        event, label, at, pid = line.split(" ")
        marks.append((event, label, float(at), int(pid)))
    return marks


@step(name="queues.work")
async def work(label: str) -> str:
    mark("start", label)
    await anyio.sleep(float(os.environ.get(STEP_SECONDS_ENV, "0.2")))
    mark("end", label)
    return f"worked {label}"


@workflow(name="queues.limited", queue=QUEUE)
async def limited(label: str) -> str:
    return await work(label)


WORKFLOWS = [limited]


async def serve(database_url: str) -> None:
    async with Engine(
        database_url,
        workflows=WORKFLOWS,
        concurrency=WORKER_CONCURRENCY,
        lease_seconds=LEASE_SECONDS,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        poll_interval=POLL_INTERVAL,
        shutdown_grace_seconds=0,
    ) as engine:
        print(f"worker {engine.runtime.worker_id} ready (pid {os.getpid()})", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    run_worker(serve, "tests.chaos.queue_app")
