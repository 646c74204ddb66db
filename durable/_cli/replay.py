"""``durable runs export`` and ``durable replay``: capture run histories, and check the code
on disk against them before a deploy.

::

    durable runs export RUN_ID > run.json
    durable runs export --workflow checkout --status completed --since 7d --dir histories/
    durable replay --app myapp.workflows:engine --from-db [--workflow checkout] [--since 7d]
    durable replay --app myapp.workflows:engine --dir histories/ [more.json ...]

``replay`` prints one line per run (run, workflow, status, verdict) and exits 0 when every
history replays compatibly, 1 when any does not, and 2 on a usage error or a file that is
not a durable history. Replaying files needs no database.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from durable._cli import args as args_
from durable._cli import format as fmt
from durable._engine import Engine
from durable._foundation.history import History, InvalidHistory, read_history
from durable._foundation.views import RunStatus
from durable._replaying.replayer import ReplayReport, expand_paths, load_history, replay_history
from durable._runs.registry import Registry, default_registry
from durable._store.connecting import connector
from durable._store.embedded import EmbeddedPostgres
from durable._store.pool import ConnectionPool
from durable._store.store import Store
from durable._workflow.decorators import Workflow

__all__ = ["add_export_arguments", "add_replay_parser", "export_command", "replay_command"]

OK, FAILED, USAGE = 0, 1, 2
IN_FLIGHT = ("pending", "running", "sleeping", "waiting", "paused")
"""Statuses of runs that may execute again: every one of them is replayed (up to --limit)."""
RECENT = ("completed", "failed")
"""Finished runs replayed when recent (--since): their outcome must come out the same."""


def add_export_arguments(export: argparse.ArgumentParser) -> None:
    """The arguments of ``durable runs export``."""
    export.add_argument(
        "run_id", nargs="?", type=args_.run_id, help="one run (else: the runs matching filters)"
    )
    export.add_argument("--workflow", type=args_.name, help="workflow name")
    export.add_argument("--status", action="append", choices=[s.value for s in RunStatus],
                        help="status (repeatable)")  # fmt: skip
    export.add_argument("--since", type=args_.moment, help="ISO time, or an age like 7d")
    export.add_argument("--limit", type=args_.positive, default=100, help="at most N runs (100)")
    export.add_argument("--dir", type=Path, help="write one RUN_ID.json file per run here")


def add_replay_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``durable replay`` command."""
    replay = commands.add_parser(
        "replay", parents=[common], help="replay run histories against the code on disk"
    )
    replay.add_argument("paths", nargs="*", type=Path, help="history files or directories")
    replay.add_argument("--app", required=True, metavar="MODULE[:ATTR]",
                        help="the code to check: an Engine, a @workflow or a list of them; "
                        "a bare module checks every workflow it registers")  # fmt: skip
    replay.add_argument("--dir", type=Path, action="append", default=[],
                        help="a directory of history files (repeatable)")  # fmt: skip
    replay.add_argument("--from-db", action="store_true",
                        help="in-flight and recent finished runs of the database")  # fmt: skip
    replay.add_argument("--workflow", action="append", type=args_.name,
                        help="only this workflow (repeatable; default: all of --app)")  # fmt: skip
    replay.add_argument("--since", type=args_.moment, default=None,
                        help="finished runs since (ISO time or age; default 7d)")  # fmt: skip
    replay.add_argument("--limit", type=args_.positive, default=500,
                        help="at most N in-flight and N finished runs (500)")  # fmt: skip


# -- export -------------------------------------------------------------------------------


async def export_command(engine: Engine, args: argparse.Namespace) -> int:
    """``durable runs export``: one run to stdout (or --dir), or many runs to --dir."""
    if args.run_id is not None:
        history = await engine.export_run(args.run_id)
        if args.dir is None:
            print(history.to_json())
        else:
            print(_save(history, args.dir))
        return OK
    if args.dir is None:
        _say("durable: exporting many runs needs --dir (or give one RUN_ID for stdout)")
        return USAGE
    count = 0
    async for history in _histories(engine, [args.workflow], args.status, args.since, args.limit):
        _save(history, args.dir)
        count += 1
    print(f"exported {count} run(s) to {args.dir}")
    return OK


def _save(history: History, directory: Path) -> Path:
    return history.save(directory / f"{history.run_id}.json")


async def _histories(
    engine: Engine,
    workflows: Sequence[str | None],
    statuses: Sequence[str] | None,
    since: datetime | None,
    limit: int,
) -> AsyncIterator[History]:
    store = engine.runtime.store
    async for run_id in _run_ids(store, workflows, statuses, since, limit):
        yield await engine.export_run(run_id)


async def _run_ids(
    store: Store,
    workflows: Sequence[str | None],
    statuses: Sequence[str] | None,
    since: datetime | None,
    limit: int,
) -> AsyncIterator[UUID]:
    """Ids of the newest runs matching the filters, at most ``limit`` per workflow."""
    for workflow in workflows:
        after: tuple[datetime, UUID] | None = None
        left = limit
        while left > 0:
            page = min(left, 1000)
            rows = await store.list_runs(
                workflow=workflow, statuses=list(statuses) if statuses else None, tag=None,
                since=since, until=None, parent=None, queue=None, after=after, limit=page,
            )  # fmt: skip
            for row in rows:
                yield row["id"]
            left -= len(rows)
            if len(rows) < page:
                break
            after = (rows[-1]["created_at"], rows[-1]["id"])


# -- replay -------------------------------------------------------------------------------


def app_registry(app: Any) -> Registry | None:
    """The workflows an ``--app`` object names (None: it is not an app)."""
    if app is None:
        return default_registry
    if isinstance(app, Engine):
        return app.registry
    if isinstance(app, Workflow):
        return Registry([app])
    if isinstance(app, list | tuple) and all(isinstance(w, Workflow) for w in app):
        return Registry(app)
    return None


async def replay_command(args: argparse.Namespace, url: str | None, app: Any) -> int:
    """``durable replay``: replay histories from files and/or the database; print a table."""
    registry = app_registry(app)
    if registry is None:
        _say(f"durable: --app must name an Engine, a @workflow or a list of them, not "
             f"{type(app).__name__}")  # fmt: skip
        return USAGE
    if not (args.from_db or args.paths or args.dir):
        _say("durable: nothing to replay: give history files, --dir, or --from-db")
        return USAGE
    names = args.workflow or sorted({wf.name for wf in registry})
    try:
        loaded = [load_history(item) for item in expand_paths([*args.paths, *args.dir])]
    except InvalidHistory as exc:
        _say(f"durable: {exc}")
        return USAGE
    except OSError as exc:
        _say(f"durable: cannot read {exc.filename or 'a history file'}: {exc.strerror or exc}")
        return USAGE
    reports = [await replay_history(h, registry, source) for h, source in loaded]
    if args.from_db:
        reports += await _replay_database(url, registry, names, args)
    print(_table(reports))
    failed = [r for r in reports if not r.ok]
    print(f"\n{len(reports)} run(s) replayed: {len(reports) - len(failed)} ok, "
          f"{len(failed)} incompatible")  # fmt: skip
    for report in failed:
        print(report.describe())
    return FAILED if failed else OK


async def _replay_database(
    url: str | None, registry: Registry, names: Sequence[str], args: argparse.Namespace
) -> list[ReplayReport]:
    """Replay runs read from the database. Not through an Engine: a pre-deploy check must
    never apply the new code's migrations to the database it checks, nor write at all."""
    since = args.since or _days_ago(7)
    reports: list[ReplayReport] = []
    embedded = EmbeddedPostgres() if url is None else None
    target = url if embedded is None else await embedded.start()
    assert target is not None  # a URL, or the embedded server's
    pool = ConnectionPool(connector(target, writes=False), max_size=1)  # reads only
    try:
        await pool.open()
        store = Store(pool)
        for statuses, start in ((IN_FLIGHT, None), (RECENT, since)):
            async for run_id in _run_ids(store, names, statuses, start, args.limit):
                history = await read_history(store, run_id)
                if history is not None:  # pruned between the listing and the read
                    reports.append(await replay_history(history, registry))
    finally:
        await pool.close()
        if embedded is not None:
            await embedded.stop()
    return reports


def _days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _table(reports: Iterable[ReplayReport]) -> str:
    rows = [
        [str(r.run_id), r.workflow, f"v{r.version}", r.status, r.verdict, r.source or "database"]
        for r in reports
    ]
    return fmt._table(["RUN", "WORKFLOW", "VERSION", "STATUS", "VERDICT", "FROM"], rows)


def _say(message: str) -> None:
    print(message, file=sys.stderr)
