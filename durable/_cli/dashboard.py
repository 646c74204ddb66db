"""``durable dashboard``: serve the web UI with uvicorn on a client engine.

Binds to 127.0.0.1 unless told otherwise, and is read-only unless ``--allow-actions``;
actions then need the token from ``DURABLE_DASHBOARD_TOKEN``, or a new one printed at
start. The database URL is never printed with its password.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from durable._foundation.dsn import redact

__all__ = ["TOKEN_ENV", "add_dashboard_parser", "dashboard_command"]

TOKEN_ENV = "DURABLE_DASHBOARD_TOKEN"
# Bound to this machine: only these Host names are served (no DNS rebinding).
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def add_dashboard_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``durable dashboard`` to the ``commands`` subparsers."""
    dash = commands.add_parser("dashboard", parents=[common], help="serve the web dashboard")
    dash.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    dash.add_argument("--port", type=int, default=8484, help="port (default 8484)")
    dash.add_argument(
        "--allow-actions",
        action="store_true",
        help="allow cancel, retry, signal, pause, resume, fork and fast-forward "
        f"(token: ${TOKEN_ENV}, or a new one printed at start)",
    )
    dash.add_argument(
        "--trace-url-template",
        metavar="URL",
        help="link runs' traces, e.g. 'https://tempo/trace/{trace_id}'",
    )


async def dashboard_command(args: argparse.Namespace, url: str | None) -> int:
    """Serve until interrupted; returns the exit status."""
    try:
        import uvicorn

        from durable.dashboard import dashboard_app
    except ImportError as exc:
        print(
            f"durable dashboard needs its extra: pip install 'durable-sdk[dashboard]' ({exc})",
            file=sys.stderr,
        )
        return 2
    from durable._engine import Engine

    token = os.environ.get(TOKEN_ENV) or None
    async with Engine(url, worker=False, read_url=getattr(args, "read_url", None)) as engine:
        app = dashboard_app(
            engine,
            allow_actions=args.allow_actions,
            token=token,
            trace_url_template=args.trace_url_template,
            allowed_hosts=LOCAL_NAMES if args.host in LOCAL_NAMES else None,
        )
        where = "the embedded PostgreSQL" if url is None else redact(url)
        print(f"durable dashboard on http://{args.host}:{args.port}/ reading {where}", flush=True)
        if not args.allow_actions:
            print("read-only: start with --allow-actions to act on runs", flush=True)
        elif token is None:
            print(
                f"actions need this token (or set ${TOKEN_ENV}): {app.state.dashboard.token}",
                flush=True,
            )
        else:
            print(f"actions need the token in ${TOKEN_ENV}", flush=True)
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        await uvicorn.Server(config).serve()
    return 0
