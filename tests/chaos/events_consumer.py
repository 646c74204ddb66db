"""A consumer of ``engine.events`` in its own process, for the SIGKILL test: each handled
event is one line ``<cursor> <run_id> <kind>`` appended to the file in ``$EVENTS_OUT``
and flushed before the next is read, starting after the cursor in ``$EVENTS_SINCE``."""

from __future__ import annotations

import os

from durable import Engine
from tests.chaos.worker_main import run_worker

OUT_ENV = "EVENTS_OUT"
SINCE_ENV = "EVENTS_SINCE"


async def serve(database_url: str) -> None:
    async with Engine(database_url, worker=False, workflows=[]) as engine:
        print(f"consumer ready (pid {os.getpid()})", flush=True)
        events = engine.events(since=os.environ[SINCE_ENV], workflow="chaos.echo_flow")
        with open(os.environ[OUT_ENV], "a", encoding="ascii") as out:  # noqa: ASYNC230
            async for event in events:
                out.write(f"{event.cursor} {event.run_id} {event.kind}\n")
                out.flush()
                os.fsync(out.fileno())


if __name__ == "__main__":
    run_worker(serve, "tests.chaos.events_consumer")
