"""Serve an engine's worker until told to stop, in this process or in N supervised ones.

``run_workers(make_engine, processes=4)`` is the embedding twin of
``durable worker --app ... --processes 4``: the supervisor (``_worker.supervisor``) spawns the
processes, and each builds its own engine with the factory and serves it until SIGTERM or
SIGINT, draining its runs the way a single worker does.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from durable._client.webhooks import DELIVERY_WORKFLOW
from durable._engine import Engine
from durable._store.embedded import DATABASE_URL_ENV_VARS, EmbeddedPostgres, resolve_database_url
from durable._worker.supervisor import USAGE_EXIT, Supervisor, supervised_parent

__all__ = ["default_processes", "embedded_for_children", "run_workers", "serve"]

_log = logging.getLogger("durable.worker")
ORPHAN_CHECK_SECONDS = 1.0


def default_processes() -> int:
    """One worker process per core."""
    return os.cpu_count() or 1


async def serve(
    engine: Engine,
    announce: Callable[[Engine], None] | None = None,
    stopping: Callable[[str], None] | None = None,
) -> None:
    """Enter ``engine`` and serve until SIGINT or SIGTERM (or, in a supervised child, until
    the supervisor is gone); leaving drains in-flight runs. ``announce(engine)`` is called
    once serving, ``stopping(reason)`` when the stop begins."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with engine:
            # This process is a worker now: what startup left alive (the app's modules, the
            # engine) stays alive, so take it out of the collector's scans. Under load the
            # full collections otherwise re-scan it all, a sixth of the worker's CPU.
            gc.freeze()
            _log.info("worker %s serving (pid %d)", engine.runtime.worker_id, os.getpid())
            if announce is not None:
                announce(engine)
            async with anyio.create_task_group() as tg:
                stopped = functools.partial(_stop, tg.cancel_scope, stopping)
                tg.start_soon(_on_signal, signals, stopped)
                parent = supervised_parent()
                if parent is not None:
                    tg.start_soon(_on_orphaned, parent, stopped)


def _stop(scope: anyio.CancelScope, stopping: Callable[[str], None] | None, reason: str) -> None:
    _log.info("%s; draining in-flight runs", reason)
    if stopping is not None:
        stopping(reason)
    scope.cancel()


async def _on_signal(signals: AsyncIterator[int], stopped: Callable[[str], None]) -> None:
    async for received in signals:
        stopped(f"received {signal.Signals(received).name}")
        return


async def _on_orphaned(parent: int, stopped: Callable[[str], None]) -> None:
    # Linux would offer PR_SET_PDEATHSIG; watching our parent pid works everywhere.
    while True:
        await anyio.sleep(ORPHAN_CHECK_SECONDS)
        if os.getppid() != parent:
            stopped("the supervisor is gone")
            return


def run_workers(
    app: str | Callable[[], Engine],
    *,
    processes: int | None = None,
    stop_timeout: float = 60.0,
) -> int:
    """Serve the workflows of ``app`` in ``processes`` worker processes (default: one per
    core) until SIGTERM or SIGINT, restarting any that dies; returns the exit status.

    ``app`` is a zero-argument factory returning an ``Engine`` (a module-level function,
    also one in the calling script, since children are spawned and import it), or a
    ``"module:attr"`` string naming an ``Engine`` or such a factory. Each process builds
    its own engine. A stop is forwarded to every process, which drains its runs; one still running
    ``stop_timeout`` seconds later is killed, and its runs resume after their lease.
    ``processes=1`` serves in this process. Call it from the main thread of a program's
    entry point (``if __name__ == "__main__":``), outside any event loop.
    """
    count = default_processes() if processes is None else processes
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"processes must be a positive integer, not {processes!r}")
    if stop_timeout < 0:
        raise ValueError(f"stop_timeout must not be negative, not {stop_timeout!r}")
    _check_blocking_entry_point()
    factory: Callable[[], Engine] = (
        functools.partial(_engine_named, app) if isinstance(app, str) else app
    )
    if not callable(factory):
        raise TypeError(f"app must be a factory returning an Engine or 'module:attr', not {app!r}")
    engine = _checked_engine(factory)  # in this process first: a bad app fails here, once
    if count == 1:
        anyio.run(serve, engine)
        return 0
    embedded = resolve_database_url(engine._database_url) is None
    with embedded_for_children(engine._database_url, engine._data_dir) as url:
        if embedded:  # the children's factories then find the server started here
            os.environ[DATABASE_URL_ENV_VARS[0]] = url
        try:
            target = functools.partial(_serve_factory, factory)
            return Supervisor(target, processes=count, stop_timeout=stop_timeout).run()
        finally:
            if embedded:
                os.environ.pop(DATABASE_URL_ENV_VARS[0], None)


def _check_blocking_entry_point() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("run_workers() blocks: call it outside any event loop")
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_workers() handles signals: call it from the main thread")


def _engine_named(spec: str) -> Engine:
    """The ``Engine`` that ``"module:attr"`` names, or that the factory it names returns
    (imported afresh in each process)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"app must be 'module:attr', not {spec!r}")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load app {spec!r}: {exc}") from exc
    engine = found if isinstance(found, Engine) else found() if callable(found) else found
    if not isinstance(engine, Engine):
        raise TypeError(f"app {spec!r} is neither an Engine nor a factory of one")
    return engine


def _checked_engine(factory: Callable[[], Engine]) -> Engine:
    engine = factory()
    if not isinstance(engine, Engine):
        raise TypeError(f"the app factory must return an Engine, not {type(engine).__name__}")
    if not engine._want_worker:
        raise ValueError("the app factory returned Engine(worker=False): it has no worker")
    if not any(wf.name != DELIVERY_WORKFLOW for wf in engine.registry):  # only built-ins
        raise ValueError("the app factory's engine registers no workflow: nothing to run")
    return engine


def _serve_factory(factory: Callable[[], Engine]) -> int:
    """A supervised child: build the engine and serve it (exit status for the supervisor)."""
    try:
        engine = _checked_engine(factory)
    except (TypeError, ValueError) as exc:
        print(f"durable: {exc}", file=sys.stderr)
        return USAGE_EXIT
    anyio.run(serve, engine)
    return 0


@contextmanager
def embedded_for_children(url: str | None, data_dir: Any = None) -> Iterator[str]:
    """The database URL children should use: ``url`` (or the environment's), else the
    embedded PostgreSQL started here, so that N children share one server rather than race
    to start it, and stopped when they are done."""
    resolved = resolve_database_url(url)
    if resolved is not None:
        yield resolved
        return
    embedded = EmbeddedPostgres()
    dsn = anyio.run(embedded.start, data_dir)
    try:
        yield dsn
    finally:
        anyio.run(embedded.stop)
