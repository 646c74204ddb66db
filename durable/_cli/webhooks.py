"""``durable webhooks add|list|remove|enable|disable|deliveries``: outbound endpoints.

``add`` prints the endpoint's signing secret once, for the receiver's configuration; a
secret of your own is read from an environment variable (``--secret-env``), never from
the command line, where other users could see it. No other command prints a secret.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from durable._cli import args as args_
from durable._cli import format as fmt
from durable._client.webhooks import WebhookEndpoint
from durable._engine import Engine

__all__ = ["add_webhooks_parser", "webhooks_command"]


def add_webhooks_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``durable webhooks ...`` to the ``commands`` subparsers."""
    hooks = commands.add_parser("webhooks", parents=[common], help="outbound webhook endpoints")
    actions = hooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="add an endpoint; prints its secret")
    add.add_argument("url")
    add.add_argument("--kind", action="append", metavar="KIND", help="event kind (repeat)")
    add.add_argument("--workflow", action="append", type=args_.name, help="workflow (repeat)")
    add.add_argument("--description", default="")
    add.add_argument("--max-attempts", type=args_.positive, default=8, metavar="N")
    add.add_argument("--retry-interval", type=float, default=5.0, metavar="SECONDS")
    add.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    add.add_argument("--secret-env", metavar="VAR", help="read the secret from $VAR")
    add.add_argument("--json", action="store_true", help="print JSON")
    listing = actions.add_parser("list", parents=[common], help="list endpoints (no secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (
        ("remove", "delete an endpoint"),
        ("enable", "deliver to an endpoint again"),
        ("disable", "stop delivering to an endpoint"),
    ):
        act = actions.add_parser(name, parents=[common], help=text)
        act.add_argument("endpoint_id", type=args_.run_id, metavar="ENDPOINT_ID")
    runs = actions.add_parser("deliveries", parents=[common], help="delivery runs, newest first")
    runs.add_argument("endpoint_id", nargs="?", type=args_.run_id, metavar="ENDPOINT_ID")
    runs.add_argument("--status", help="e.g. failed")
    runs.add_argument("--limit", type=args_.page_size, default=50)
    runs.add_argument("--json", action="store_true", help="print JSON")


async def webhooks_command(engine: Engine, args: argparse.Namespace) -> int:
    """Run one ``durable webhooks`` action; 0 done, or raises for main to report."""
    hooks = engine.webhooks
    if args.action == "add":
        endpoint = await hooks.add(
            args.url, kinds=args.kind, workflows=args.workflow, secret=_secret(args),
            description=args.description, max_attempts=args.max_attempts,
            retry_interval=args.retry_interval, timeout=args.timeout,
        )  # fmt: skip
        _print_endpoints([endpoint], args.json, with_secret=True)
        return 0
    if args.action == "list":
        _print_endpoints(await hooks.list(), args.json, with_secret=False)
        return 0
    if args.action == "deliveries":
        page = await hooks.deliveries(args.endpoint_id, status=args.status, limit=args.limit)
        print(fmt.as_json(page.items) if args.json else fmt.runs_table(page.items, False))
        return 0
    act = {"remove": hooks.remove, "enable": hooks.enable, "disable": hooks.disable}
    if not await act[args.action](args.endpoint_id):
        raise ValueError(f"no webhook endpoint {args.endpoint_id}")
    print(f"{args.action}d {args.endpoint_id}" if args.action != "remove" else "removed")
    return 0


def _secret(args: argparse.Namespace) -> str | None:
    if args.secret_env is None:
        return None
    value = os.environ.get(args.secret_env)
    if not value:
        raise ValueError(f"${args.secret_env} is not set")
    return value


def _print_endpoints(items: list[WebhookEndpoint], as_json: bool, *, with_secret: bool) -> None:
    rows = [_plain(e, with_secret) for e in items]
    if as_json:
        print(fmt.as_json(rows))
        return
    for row in rows:
        kinds = ",".join(row["kinds"]) or "*"
        workflows = ",".join(row["workflows"]) or "*"
        state = "disabled" if row["disabled"] else "enabled"
        print(f"{row['id']}  {state}  kinds={kinds}  workflows={workflows}  {row['url']}")
        if with_secret:
            print(f"secret: {row['secret']}  (shown once: configure the receiver with it)")


def _plain(endpoint: WebhookEndpoint, with_secret: bool) -> dict[str, Any]:
    row = {name: getattr(endpoint, name) for name in endpoint.__dataclass_fields__}
    if not with_secret:
        row.pop("secret")
    return row
