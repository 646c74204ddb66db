"""The chaos workflows served by a supervisor of several worker processes.

    python -m durable worker --app tests.chaos.supervised_app:engine --processes 2 ...
    python -m tests.chaos.supervised_app <processes>      # durable.run_workers(make_engine)

Short leases, so a killed process's runs resume within seconds. Logs go to stdout at INFO,
so the tests read the supervisor's account of its children.
"""

from __future__ import annotations

import logging
import sys

from durable import Engine, run_workers
from tests.chaos.worker_app import HEARTBEAT_SECONDS, LEASE_SECONDS, POLL_INTERVAL, WORKFLOWS

logging.basicConfig(
    level=logging.INFO,
    stream=sys.stdout,
    format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s",
)


def make_engine() -> Engine:
    """Each worker process's engine (the database URL comes from the environment)."""
    return Engine(
        workflows=WORKFLOWS,
        concurrency=3,
        lease_seconds=LEASE_SECONDS,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        poll_interval=POLL_INTERVAL,
        shutdown_grace_seconds=20,
    )


engine = make_engine()

if __name__ == "__main__":
    sys.exit(run_workers(make_engine, processes=int(sys.argv[1]), stop_timeout=40))
