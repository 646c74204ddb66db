"""``durable schedules``: list, pause, resume, trigger and delete schedules."""

from __future__ import annotations

import argparse

from durable._cli import args as args_
from durable._cli import format as fmt
from durable._engine import Engine
from durable.errors import ScheduleNotFound

__all__ = ["add_schedules_arguments", "schedules_command"]


def add_schedules_arguments(
    schedules: argparse.ArgumentParser, common: argparse.ArgumentParser
) -> None:
    """The actions of ``durable schedules``: list, pause, resume, trigger, delete."""
    actions = schedules.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list schedules")
    listing.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (
        ("pause", "stop firing a schedule"),
        ("resume", "fire a schedule again from its next tick"),
        ("trigger", "start a schedule's run now"),
        ("delete", "delete a schedule"),
    ):
        act = actions.add_parser(name, parents=[common], help=text)
        act.add_argument("name", type=args_.name)
        act.add_argument("--json", action="store_true", help="print JSON")


async def schedules_command(engine: Engine, args: argparse.Namespace, color: bool) -> int:
    """Run one ``durable schedules`` action; 0 done, or raises for main to report."""
    schedules = engine.schedules
    if args.action == "list":
        items = await schedules.list()
        print(fmt.as_json(items) if args.json else fmt.schedules_table(items, color))
        return 0
    if args.action == "trigger":
        handle = await schedules.trigger(args.name)
        print(fmt.as_json({"run_id": handle.run_id}) if args.json else handle.run_id)
        return 0
    if args.action == "delete":
        if not await schedules.delete(args.name):
            raise ScheduleNotFound(args.name)
        print(fmt.as_json({"deleted": args.name}) if args.json else f"deleted schedule {args.name}")
        return 0
    info = await (schedules.pause if args.action == "pause" else schedules.resume)(args.name)
    if args.json:
        print(fmt.as_json(info))
    else:
        print(f"{args.action}d schedule {info.name} (next tick {info.next_fire_at})")
    return 0
