"""The ``durable`` command line (also ``python -m durable``).

::

    durable worker --app myapp.workflows:engine [--queues default,emails] [--concurrency 8]
    durable migrate [--dry-run] [--partitioned [--partition-period 1d]]
    durable runs list [--status failed --since 12h --workflow checkout --tag tenant:acme]
    durable runs show RUN_ID
    durable runs cancel|retry|pause|resume|watch|fast-forward RUN_ID   (or an id prefix)
    durable runs retry --status failed [--workflow checkout --since 1d] [--dry-run]
    durable runs retry RUN_ID [--discard-signal NAME | --replace-signal NAME PAYLOAD_JSON]
    durable runs fork RUN_ID [--from-step step:charge#0]
    durable runs signal RUN_ID NAME [PAYLOAD_JSON]
    durable schedules list
    durable schedules pause|resume|trigger|delete NAME
    durable runs export RUN_ID > run.json       (or --workflow/--status/--since/--limit --dir D)
    durable replay --app myapp.workflows:engine --from-db | --dir histories/ | FILE ...
    durable dashboard [--host 127.0.0.1] [--port 8484] [--allow-actions]
    durable webhooks add URL [--kind run.failed --workflow checkout --secret-env VAR]
    durable webhooks list | remove|enable|disable ENDPOINT_ID | deliveries [ENDPOINT_ID]

The database is ``--database-url``, else ``DURABLE_DATABASE_URL``, else ``DATABASE_URL``,
else the embedded PostgreSQL (like ``Engine``); a URL may name several hosts
(``postgresql://h1,h2/db``: the one accepting writes is used). ``--read-url`` (else
``DURABLE_READ_DATABASE_URL``) names a replica for ``runs list|show|export`` and the
dashboard's pages (``Engine(read_url=...)``). Exit status: 0 done, 1 the operation
failed (unknown run, nothing to retry, database unreachable, ...), 2 a usage error.
Built on argparse: no dependency beyond the library's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import anyio
import asyncpg

from durable._cli import args as args_
from durable._cli import format as fmt
from durable._cli.dashboard import add_dashboard_parser, dashboard_command
from durable._cli.history import add_partition_arguments, apply_partitioned_layout
from durable._cli.replay import (
    add_export_arguments,
    add_replay_parser,
    export_command,
    replay_command,
)
from durable._cli.runs import (
    add_runs_arguments,
    delete_command,
    fast_forward_command,
    resolve_ids,
    retry_command,
    runs_list_text,
    show_text,
    waits_of,
    watch_command,
    workflows_command,
)
from durable._cli.schedules import add_schedules_arguments, schedules_command
from durable._cli.webhooks import add_webhooks_parser, webhooks_command
from durable._cli.worker import add_worker_arguments, announce, processes_of, supervise
from durable._client.webhooks import DELIVERY_WORKFLOW
from durable._engine import Engine
from durable._foundation.dsn import redact, scrub
from durable._foundation.history import InvalidHistory
from durable._foundation.validate import (
    parse_json_argument,
)
from durable._foundation.views import RunStatus
from durable._run_workers import serve
from durable._runs.deliveries import SignalKind
from durable._store.connecting import connector
from durable._store.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresUnavailable,
    resolve_database_url,
)
from durable._store.migrations import migrate, pending_migrations
from durable._store.replicas import READ_URL_ENV
from durable._workflow.decorators import Workflow
from durable.errors import DurableError, PayloadTooLarge, SerializationError

__all__ = ["main"]

OK, FAILED, USAGE = 0, 1, 2


class CommandFailed(Exception):
    """The command ran but could not do what was asked (exit status ``code``)."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


class UsageError(Exception):
    """A bad command line: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised (main prints it, scrubbed of passwords)
    instead of printed with the usage text and ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


# -- arguments ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--database-url", default=argparse.SUPPRESS, metavar="URL",
        help="PostgreSQL URL (default: $DURABLE_DATABASE_URL, $DATABASE_URL, else embedded)",
    )  # fmt: skip
    common.add_argument(
        "--read-url", default=argparse.SUPPRESS, metavar="URL",
        help=f"a replica for lists, details and the dashboard (default: ${READ_URL_ENV})",
    )  # fmt: skip
    parser = _Parser(
        prog="durable", parents=[common], description="Operate durable workflows on Postgres."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    worker = commands.add_parser("worker", parents=[common], help="run a worker")
    add_worker_arguments(worker)
    migrate_cmd = commands.add_parser("migrate", parents=[common], help="apply migrations")
    migrate_cmd.add_argument("--dry-run", action="store_true", help="print the pending SQL")
    add_partition_arguments(migrate_cmd)
    _runs_parser(commands.add_parser("runs", parents=[common], help="inspect and act on runs"),
                 common)  # fmt: skip
    add_schedules_arguments(
        commands.add_parser("schedules", parents=[common], help="list and control schedules"),
        common,
    )
    served = commands.add_parser(
        "workflows", parents=[common], help="registered workflows and the workers serving them"
    )
    served.add_argument("--json", action="store_true", help="print JSON")
    add_replay_parser(commands, common)
    add_dashboard_parser(commands, common)
    add_webhooks_parser(commands, common)
    return parser


def _runs_parser(runs: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list runs, newest first")
    listing.add_argument("--workflow", type=args_.name, help="workflow name")
    listing.add_argument("--status", action="append", choices=[s.value for s in RunStatus],
                         help="status (repeatable)")  # fmt: skip
    listing.add_argument("--tag", type=args_.name, help="runs carrying this tag")
    listing.add_argument("--since", type=args_.moment, help="ISO time, or an age like 12h")
    listing.add_argument("--until", type=args_.moment, help="ISO time, or an age like 30m")
    listing.add_argument("--parent", type=args_.run_id, help="child runs of this run id")
    listing.add_argument("--queue", type=args_.name, help="queue name")
    listing.add_argument("--resource", type=args_.name, help="runs of this resource id only")
    listing.add_argument("--order", choices=["desc", "asc"], default="desc",
                         help="newest first (desc, default) or oldest first")  # fmt: skip
    listing.add_argument("--limit", type=args_.page_size, default=50, help="page size (max 1000)")
    listing.add_argument(
        "--cursor", type=args_.cursor, help="next_cursor printed by the previous page"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", parents=[common], help="a run's steps timeline")
    show.add_argument("run_id", type=args_.run_id)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--full-input", action="store_true", help="the whole input, indented")
    for name, text in (
        ("cancel", "cancel a run and its children"),
        ("pause", "stop claiming a run"),
        ("resume", "resume a paused run"),
        ("delete", "delete a finished run, its children and records"),
    ):
        act = actions.add_parser(name, parents=[common], help=text)
        act.add_argument("run_id", type=args_.run_id)
        act.add_argument("--json", action="store_true", help="print JSON")
    add_runs_arguments(actions, common)
    fork = actions.add_parser("fork", parents=[common], help="rerun a run from a step")
    fork.add_argument("run_id", type=args_.run_id)
    fork.add_argument(
        "--from-step", type=args_.key, metavar="CURSOR_KEY", help="e.g. step:charge#0"
    )
    fork.add_argument("--json", action="store_true", help="print JSON")
    send = actions.add_parser("signal", parents=[common], help="send a signal to a run")
    send.add_argument("run_id", type=args_.run_id)
    send.add_argument("name", type=args_.name)
    send.add_argument("payload", nargs="?", default="null", help="JSON (default: null)")
    send.add_argument("--idempotency-key", type=args_.key)
    send.add_argument("--json", action="store_true", help="print JSON")
    add_export_arguments(
        actions.add_parser("export", parents=[common], help="write run histories as JSON")
    )


# -- running -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    url: str | None = None
    read_url = os.environ.get(READ_URL_ENV) or None
    try:
        args = _parser().parse_args(argv)
        url = resolve_database_url(getattr(args, "database_url", None))
        read_url = getattr(args, "read_url", None) or read_url
        args.read_url = read_url
        if args.command == "worker" and processes_of(args) > 1:
            return supervise(args, _checked_worker_engine(args, url), main)
        return anyio.run(_dispatch, args, url)
    except CommandFailed as exc:
        return _fail(f"durable: {exc}", exc.code, url, read_url)
    except UsageError as exc:
        return _fail(str(exc), USAGE, url, read_url)
    except EmbeddedPostgresUnavailable as exc:
        return _fail(f"durable: {exc}", USAGE, url, read_url)
    except InvalidHistory as exc:
        return _fail(f"durable: {exc}", USAGE, url, read_url)
    except (SerializationError, PayloadTooLarge, asyncpg.DataError) as exc:
        # A value the database cannot store is the caller's, not the database's, problem.
        return _fail(f"durable: invalid value: {exc}", USAGE, url, read_url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if _refused_value(exc):
            return _fail(f"durable: invalid value: {exc}", USAGE, url, read_url)
        where = "the embedded PostgreSQL" if url is None else redact(url)
        return _fail(
            f"durable: database error at {where}: {type(exc).__name__}: {exc}\n"
            "Check that PostgreSQL is running and --database-url (or DURABLE_DATABASE_URL) "
            "points at it.",
            FAILED,
            url,
            read_url,
        )
    except (DurableError, ValueError, TypeError) as exc:
        return _fail(f"durable: {exc}", FAILED, url, read_url)
    except (RecursionError, OverflowError) as exc:
        return _fail(
            f"durable: an argument is too large or too deeply nested ({exc})", USAGE, url, read_url
        )
    except KeyboardInterrupt:
        return 130


def _refused_value(exc: BaseException) -> bool:
    """The driver could not encode an argument (e.g. a lone surrogate): asyncpg's client-side
    DataError is both an InterfaceError and a ValueError, like a bad URL, which is not."""
    return isinstance(exc, ValueError) and not isinstance(exc, asyncpg.ClientConfigurationError)


def _fail(message: str, code: int, *urls: str | None) -> int:
    _say(scrub(message, *urls))
    return code


def _say(message: str) -> None:
    print(message, file=sys.stderr)


async def _dispatch(args: argparse.Namespace, url: str | None) -> int:
    if args.command == "worker":
        return await _worker(args, url)
    if args.command == "migrate":
        return await _migrate(args, url)
    if args.command == "replay":
        return await replay_command(args, url, _load_app(args.app))
    if args.command == "dashboard":
        return await dashboard_command(args, url)
    async with Engine(url, worker=False, read_url=args.read_url) as engine:
        if args.command == "runs":
            return await _runs(engine, args)
        if args.command == "workflows":
            return await workflows_command(engine, args)
        if args.command == "webhooks":
            return await webhooks_command(engine, args)
        return await schedules_command(engine, args, _color())


def _color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()


# -- worker and migrate ------------------------------------------------------------------------


def _load_app(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the app's own modules import
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandFailed(f"cannot import --app module {module_name!r}: {exc}", USAGE) from exc
    if not attr:
        return None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise CommandFailed(f"module {module_name!r} has no attribute {attr!r}", USAGE) from None


def _worker_engine(app: Any, args: argparse.Namespace, url: str | None) -> Engine:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    options: dict[str, Any] = {}
    if args.concurrency:
        options["concurrency"] = args.concurrency
    if isinstance(app, Engine):
        if url is not None:
            app._database_url = url
        app._want_worker = True  # the web process's client engine: this command is its worker
        changes: dict[str, Any] = dict(options)
        if queues:
            changes["queues"] = tuple(queues)
        app.settings = dataclasses.replace(app.settings, **changes)
        return app
    if app is None:
        workflows = None
    elif isinstance(app, Workflow):
        workflows = [app]
    elif isinstance(app, list | tuple) and all(isinstance(w, Workflow) for w in app):
        workflows = list(app)
    else:
        raise CommandFailed(
            f"--app must name an Engine, a @workflow or a list of them, not {type(app).__name__}",
            USAGE,
        )
    return Engine(url, workflows=workflows, queues=queues, **options)


def _checked_worker_engine(args: argparse.Namespace, url: str | None) -> Engine:
    engine = _worker_engine(_load_app(args.app), args, url)
    if not any(wf.name != DELIVERY_WORKFLOW for wf in engine.registry):  # only built-ins
        raise CommandFailed(f"--app {args.app} registers no workflow: nothing to run", USAGE)
    return engine


async def _worker(args: argparse.Namespace, url: str | None) -> int:
    def stopping(reason: str) -> None:
        print(f"{reason}; shutting down", flush=True)

    await serve(_checked_worker_engine(args, url), announce, stopping)
    return OK


async def _migrate(args: argparse.Namespace, url: str | None) -> int:
    embedded = None
    if url is None:
        embedded = EmbeddedPostgres()
        url = await embedded.start()
    try:
        conn = await connector(url)()
        try:
            if args.dry_run:
                return _print_pending(await pending_migrations(conn))
            applied = await migrate(conn)
            layout = await apply_partitioned_layout(conn, args)
        finally:
            await conn.close()
    finally:
        if embedded is not None:
            await embedded.stop()
    print(f"applied migrations {applied}" if applied else "the database is up to date")
    if layout:
        print(layout)
    return OK


def _print_pending(pending: Sequence[Any]) -> int:
    if not pending:
        print("-- the database is up to date: no pending migrations")
        return OK
    for migration in pending:
        print(f"-- migration {migration.version:04d}_{migration.name}\n{migration.sql.rstrip()}\n")
    return OK


# -- runs and schedules -------------------------------------------------------------------------


async def _runs(engine: Engine, args: argparse.Namespace) -> int:
    action = args.action
    await resolve_ids(engine, args)
    if action == "watch":
        return await watch_command(engine, args, _color())
    if action == "fast-forward":
        return await fast_forward_command(engine, args)
    commands = {
        "retry": retry_command, "list": _runs_list, "show": _runs_show,
        "signal": _runs_signal, "export": export_command, "delete": delete_command,
    }  # fmt: skip
    if action in commands:
        return await commands[action](engine, args)
    if action == "fork":
        handle = await engine.fork(args.run_id, from_step=args.from_step)
        print(fmt.as_json({"run_id": handle.run_id}) if args.json else handle.run_id)
        return OK
    done = {"cancel": engine.cancel, "pause": engine.pause, "resume": engine.resume}[action]
    if not await done(args.run_id):
        status = await engine.handle(args.run_id).status()
        if args.json:
            print(fmt.as_json({"run_id": args.run_id, "done": False, "status": status}))
        raise CommandFailed(f"cannot {action} run {args.run_id}: it is {status}")
    if args.json:
        print(fmt.as_json({"run_id": args.run_id, "done": True, "action": action}))
    else:
        print(f"{action}{'led' if action == 'cancel' else 'd'} run {args.run_id}")
    return OK


async def _runs_list(engine: Engine, args: argparse.Namespace) -> int:
    page = await engine.list_runs(
        workflow=args.workflow, status=args.status, tag=args.tag, since=args.since,
        until=args.until, limit=args.limit, cursor=args.cursor, parent=args.parent,
        queue=args.queue, resource_id=args.resource, order=args.order,
    )  # fmt: skip
    waits = await waits_of(engine, page.items)
    if args.json:
        items = [{**fmt._plain(r), **_wait_fields(waits.get(r.run_id))} for r in page.items]
        print(fmt.as_json({"items": items, "next_cursor": page.next_cursor}))
        return OK
    print(runs_list_text(page.items, waits, _color()))
    if page.next_cursor:
        print(f"\nmore: durable runs list --cursor {page.next_cursor} ...")
    return OK


async def _runs_show(engine: Engine, args: argparse.Namespace) -> int:
    detail = await engine.get_run(args.run_id)
    if args.json:
        print(fmt.as_json(detail))
        return OK
    children = (await engine.list_runs(parent=detail.run_id, limit=1000)).items
    waits = (await waits_of(engine, [detail])).get(detail.run_id)
    print(show_text(detail, children, waits, color=_color(), full_input=args.full_input))
    return OK


def _wait_fields(waits: Any) -> dict[str, Any]:
    if waits is None:
        return {"waiting_for": [], "wake_at": None}
    wake = waits.wake_at.isoformat() if waits.wake_at else None
    return {"waiting_for": waits.waiting_for, "wake_at": wake}


async def _runs_signal(engine: Engine, args: argparse.Namespace) -> int:
    try:
        payload = parse_json_argument("the payload", args.payload)
    except ValueError as exc:
        raise CommandFailed(f"the payload must be JSON ({exc}); quote strings: '\"yes\"'",
                            USAGE) from None  # fmt: skip
    delivery = await engine.signal(
        args.run_id, args.name, payload, idempotency_key=args.idempotency_key
    )
    detail = f" ({delivery.detail})" if delivery.detail else ""
    if args.json:
        print(fmt.as_json(delivery))
    if delivery.kind in (SignalKind.RUN_NOT_FOUND, SignalKind.RUN_FINISHED,
                         SignalKind.INVALID_PAYLOAD):  # fmt: skip
        raise CommandFailed(f"signal {args.name!r} not sent: {delivery.kind}{detail}")
    if not args.json:
        print(f"signal {args.name!r} {delivery.kind}{detail}")
    return OK
