"""``durable worker``: its arguments, its banner, and the supervisor of ``--processes N``.

``durable.cli`` loads the app and builds the engine (so a bad ``--app`` fails once, in the
supervisor); with more than one process, ``supervise`` runs N children, each of which is
``durable worker ... --processes 1`` called in a spawned process (see ``_supervisor``).
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Sequence

from durable._cli import args as args_
from durable._engine import Engine
from durable._run_workers import default_processes, embedded_for_children
from durable._worker.supervisor import Supervisor

__all__ = ["add_worker_arguments", "announce", "processes_of", "supervise"]


def add_worker_arguments(worker: argparse.ArgumentParser) -> None:
    """The options of ``durable worker``."""
    worker.add_argument("--app", required=True, metavar="MODULE[:ATTR]",
                        help="an Engine, a workflow or a list of them; a bare module serves "
                        "every workflow it registers")  # fmt: skip
    worker.add_argument("--queues", metavar="Q1,Q2", help="queues to serve (default: all)")
    worker.add_argument("--concurrency", type=args_.positive, metavar="N",
                        help="runs at once, per process")  # fmt: skip
    worker.add_argument(
        "--processes", type=args_.positive, metavar="N",
        help=f"worker processes under one supervisor (default: one per core, {default_processes()}"
        " here); 1 runs the worker in this process",
    )  # fmt: skip
    worker.add_argument(
        "--stop-timeout", type=args_.seconds, default=60.0, metavar="SECONDS",
        help="after SIGTERM, kill processes still draining this long (default 60)",
    )  # fmt: skip


def processes_of(args: argparse.Namespace) -> int:
    """How many worker processes the command asks for."""
    return default_processes() if args.processes is None else int(args.processes)


def announce(engine: Engine) -> None:
    """The banner a serving worker prints (tests and operators wait for it)."""
    names = ", ".join(sorted({wf.name for wf in engine.registry}))
    print(
        f"durable worker {engine.runtime.worker_id} serving {names} on queues "
        f"{', '.join(engine.settings.queues)} (concurrency "
        f"{engine.settings.concurrency}); Ctrl-C or SIGTERM stops it",
        flush=True,
    )


def supervise(
    args: argparse.Namespace, engine: Engine, main: Callable[[Sequence[str]], int]
) -> int:
    """Run ``processes_of(args)`` children of ``main(["worker", ...])`` until stopped."""
    count = processes_of(args)
    with embedded_for_children(engine._database_url, engine._data_dir) as url:
        # The URL reaches children pickled through a pipe, never on a visible command line.
        argv = ["worker", "--app", args.app, "--processes", "1", "--database-url", url]
        if args.queues:
            argv += ["--queues", args.queues]
        if args.concurrency:
            argv += ["--concurrency", str(args.concurrency)]
        print(
            f"durable supervisor (pid {os.getpid()}) running {count} worker processes; "
            "Ctrl-C or SIGTERM stops them",
            flush=True,
        )
        target = functools.partial(main, argv)
        return Supervisor(target, processes=count, stop_timeout=args.stop_timeout).run()
