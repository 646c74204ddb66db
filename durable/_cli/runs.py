"""The ``durable runs`` commands beyond the basics: id prefixes, wide listings, ``watch``,
``fast-forward``, bulk ``retry`` and JSON output for every action.

``durable.cli`` builds the parsers with ``add_runs_arguments`` and hands these commands
here; the plain text they print comes from ``durable._cli.format``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from durable._cli import args as args_
from durable._cli import format as fmt
from durable._client.management import RetryKind
from durable._engine import Engine
from durable._foundation.validate import parse_json_argument
from durable._foundation.views import RunDetail, RunStatus, RunSummary
from durable._runs.operations import progress_watch
from durable._store.run_lookup import RunWaits, resolve_run_id, run_waits

__all__ = [
    "add_runs_arguments",
    "delete_command",
    "fast_forward_command",
    "resolve_ids",
    "retry_command",
    "runs_list_text",
    "show_text",
    "watch_command",
    "workflows_command",
]

BULK_LIMIT = 1000


def add_runs_arguments(actions: Any, common: argparse.ArgumentParser) -> None:
    """Add ``watch``, ``fast-forward`` and the bulk ``retry`` to ``durable runs``."""
    watch = actions.add_parser("watch", parents=[common], help="follow a run live")
    watch.add_argument("run_id", type=args_.run_id)
    watch.add_argument("--json", action="store_true", help="one JSON line per change")
    forward = actions.add_parser(
        "fast-forward",
        parents=[common],
        help="end a run's sleep now, or send the signal it waits for",
    )
    forward.add_argument("run_id", type=args_.run_id)
    forward.add_argument("payload", nargs="?", default="null", help="signal payload JSON")
    forward.add_argument("--signal", help="which signal, when the run waits for several")
    forward.add_argument("--json", action="store_true", help="print JSON")
    retry = actions.add_parser(
        "retry", parents=[common],
        help="resume a failed run from the failed step (or every failed run matching filters)",
    )  # fmt: skip
    retry.add_argument("run_id", nargs="?", type=args_.run_id)
    retry.add_argument("--status", choices=["failed"], help="bulk: the runs with this status")
    retry.add_argument("--workflow", help="bulk: only this workflow")
    retry.add_argument("--since", type=args_.moment, help="bulk: created since (ISO time or age)")
    retry.add_argument("--limit", type=args_.positive, default=BULK_LIMIT, help="bulk: at most N")
    retry.add_argument("--dry-run", action="store_true", help="bulk: list, retry nothing")
    retry.add_argument("--json", action="store_true", help="print JSON")
    fix = retry.add_mutually_exclusive_group()
    fix.add_argument(
        "--discard-signal",
        metavar="NAME",
        help="drop the run's latest recorded signal NAME; its wait is armed again",
    )
    fix.add_argument(
        "--replace-signal",
        nargs=2,
        metavar=("NAME", "PAYLOAD"),
        help="record the JSON PAYLOAD in place of the run's latest signal NAME",
    )


async def resolve_ids(engine: Engine, args: argparse.Namespace) -> None:
    """Replace a run-id prefix in ``args`` (``run_id``, ``parent``) with the full id."""
    store = engine.runtime.store
    for name in ("run_id", "parent"):
        value = getattr(args, name, None)
        if value:
            setattr(args, name, str(await resolve_run_id(store, value)))


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    relative = f"{fmt.duration(seconds)} ago" if seconds >= 0 else f"in {fmt.duration(-seconds)}"
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} ({relative})"


def runs_list_text(items: Sequence[RunSummary], waits: dict[UUID, RunWaits], color: bool) -> str:
    """The runs table with what each run waits for, when it wakes, and its error."""
    if not items:
        return "no runs match"
    rows = []
    for r in items:
        w = waits.get(r.run_id)
        live = not r.status.finished and w is not None
        rows.append([
            str(r.run_id), f"{r.workflow}@{r.version}", str(r.status),
            f"{r.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            fmt.duration(None if r.started_at is None or r.finished_at is None
                         else (r.finished_at - r.started_at).total_seconds()),
            str(r.attempt),
            ",".join(w.waiting_for) if live and w else "",
            _when(w.wake_at, w.now) if live and w and w.wake_at else "",
            "" if r.error is None else f"{r.error.type}: {r.error.message}"[:80],
            ",".join(r.tags),
        ])  # fmt: skip
    headers = ["RUN ID", "WORKFLOW", "STATUS", "CREATED", "TOOK", "ATTEMPT", "WAITING FOR",
               "WAKES", "ERROR", "TAGS"]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r, row in zip(items, rows, strict=True):
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        cells[2] = fmt.paint(cells[2], str(r.status), color)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def show_text(
    detail: RunDetail, children: Sequence[RunSummary], waits: RunWaits | None, *,
    color: bool, full_input: bool,
) -> str:  # fmt: skip
    """``durable runs show``: the run's facts with relative times, every call with its
    attempts and error, events inline, children."""
    now = waits.now if waits else datetime.now(UTC)
    text = fmt.run_detail(detail, children, color)
    lines = text.splitlines()
    took = fmt.duration(
        None if detail.started_at is None or detail.finished_at is None
        else (detail.finished_at - detail.started_at).total_seconds()
    )  # fmt: skip
    readable = {
        "created   ": _when(detail.created_at, now),
        "started   ": _when(detail.started_at, now),
        "finished  ": f"{_when(detail.finished_at, now)}  (took {took})",
    }
    for i, line in enumerate(lines):
        if line[:10] in readable:
            lines[i] = line[:10] + readable.pop(line[:10])
        elif full_input and line.startswith("input     "):
            pretty = json.dumps(detail.input, indent=2, default=str)
            lines[i] = "input     " + pretty.replace("\n", "\n          ")
    if waits and not detail.status.finished:
        extra = []
        if waits.waiting_for:
            extra.append(f"waits for {', '.join(waits.waiting_for)}")
        if waits.wake_at:
            extra.append(f"wakes     {_when(waits.wake_at, now)}")
        lines[3:3] = extra
    retried = [s for s in detail.steps if len(s.attempts) > 1 or s.attempt > 1]
    if retried:
        lines += ["", "retried calls (every attempt, oldest first)"]
        for step in retried:
            lines.append(f"  {step.cursor_key}: {len(step.attempts)} attempts, {step.status}")
            lines += [f"    {fmt.attempt_line(a)}" for a in step.attempts]
    return "\n".join(lines)


async def watch_command(engine: Engine, args: argparse.Namespace, color: bool) -> int:
    """Print the run's status and new calls as they happen, until it finishes (or Ctrl-C).
    Woken by the engine's LISTEN connection; a slow re-read covers lost notifications."""
    runtime = engine.runtime
    run_id = UUID(args.run_id)
    seen: set[str] = set()
    status: str | None = None
    async with (
        runtime.listener.watch(run_id) as changed,
        progress_watch(runtime, run_id) as renew,  # step records notify meanwhile
    ):
        while True:
            detail = await engine.get_run(run_id)
            for step in detail.steps:
                marker = f"{step.cursor_key}:{step.status}:{step.attempt}"
                if marker not in seen:
                    seen.add(marker)
                    _say_step(args.json, step, color)
            if str(detail.status) != status:
                status = str(detail.status)
                _say_status(args.json, detail, color)
            if detail.status.finished:
                if detail.status == RunStatus.COMPLETED:
                    return 0
                print(f"durable: run {run_id} {detail.status}", file=sys.stderr)
                return 1
            await changed.wait(runtime.settings.poll_interval)
            await renew()


def _say_step(as_json: bool, step: Any, color: bool) -> None:
    if as_json:
        print(json.dumps({"call": fmt._plain(step)}, default=str), flush=True)
        return
    error = f"  {step.error.type}: {step.error.message}" if step.error else ""
    print(f"  {step.cursor_key}  {fmt.paint(step.status, step.status, color)}"
          f"  attempt {step.attempt}{error}", flush=True)  # fmt: skip


def _say_status(as_json: bool, detail: RunDetail, color: bool) -> None:
    if as_json:
        print(json.dumps({"status": str(detail.status), "run_id": str(detail.run_id)}),
              flush=True)  # fmt: skip
        return
    status = fmt.paint(str(detail.status), str(detail.status), color)
    print(f"run {detail.run_id} {status}", flush=True)
    if detail.error is not None:
        print(f"  {detail.error.type}: {detail.error.message}", flush=True)


async def fast_forward_command(engine: Engine, args: argparse.Namespace) -> int:
    """``durable runs fast-forward ID [PAYLOAD]``."""
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        print(f"durable: the payload must be JSON ({exc})", file=sys.stderr)
        return 2
    result = await engine.fast_forward(args.run_id, payload, signal=args.signal)
    done = result.kind in ("woken", "signalled")
    if args.json:
        print(fmt.as_json(result))
    elif done:
        delivery = f" ({result.delivery.kind})" if result.delivery else ""
        print(f"run {args.run_id}: {result.kind}{delivery}")
    if not done:
        print(f"durable: run {args.run_id}: {result.kind}, nothing to fast-forward",
              file=sys.stderr)  # fmt: skip
    return 0 if done else 1


async def retry_command(engine: Engine, args: argparse.Namespace) -> int:
    """One run by id, or (``--status failed``) every failed run matching the filters."""
    bulk = args.status or args.workflow or args.since or args.dry_run
    if args.run_id and bulk:
        print("durable: give a run id or bulk filters (--status ...), not both", file=sys.stderr)
        return 2
    if not args.run_id and args.status != "failed":
        print("durable: give a run id, or --status failed [--workflow W] [--since 1d]",
              file=sys.stderr)  # fmt: skip
        return 2
    if (args.discard_signal or args.replace_signal) and not args.run_id:
        print("durable: --discard-signal/--replace-signal mend one run: give its id",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.run_id:
        return await _retry_one(engine, args)
    targets = await _failed_runs(engine, args)
    if args.dry_run:
        _print_retry(args, [{"run_id": str(t), "result": "would retry"} for t in targets])
        return 0
    results = []
    for target in targets:
        outcome = await engine.retry(target)
        results.append({"run_id": str(target), "result": str(outcome.kind),
                        "requeued": [str(r) for r in outcome.retried]})  # fmt: skip
    _print_retry(args, results)
    return 0


async def _retry_one(engine: Engine, args: argparse.Namespace) -> int:
    replace = None
    if args.replace_signal:
        name, text = args.replace_signal
        try:
            replace = (name, parse_json_argument("the payload", text))
        except ValueError as exc:
            print(f"durable: {exc}", file=sys.stderr)
            return 2
    try:
        result = await engine.retry(
            args.run_id, discard_signal=args.discard_signal, replace_signal=replace
        )
    except ValueError as exc:  # no recorded signal of that name: nothing changed
        print(f"durable: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(fmt.as_json(result))
    elif result.kind == RetryKind.MISSING:
        print(f"durable: no run with id {args.run_id}", file=sys.stderr)
    elif result.kind == RetryKind.NOT_FAILED:
        print(f"durable: run {args.run_id} is {result.status}, not failed: nothing to retry",
              file=sys.stderr)  # fmt: skip
    else:
        print(f"queued run {args.run_id} for retry ({len(result.retried)} run(s) requeued)")
    return 0 if result.kind == RetryKind.QUEUED else 1


async def _failed_runs(engine: Engine, args: argparse.Namespace) -> list[UUID]:
    found: list[UUID] = []
    cursor = None
    while len(found) < args.limit:
        page = await engine.list_runs(
            workflow=args.workflow, status="failed", since=args.since,
            limit=min(1000, args.limit - len(found)), cursor=cursor,
        )  # fmt: skip
        # Top-level runs only: retrying a parent retries its failed children with it.
        found += [r.run_id for r in page.items if r.parent_run_id is None]
        cursor = page.next_cursor
        if cursor is None:
            break
    return found


def _print_retry(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if not results:
        print("no failed runs match")
    for r in results:
        print(f"{r['run_id']}  {r['result']}")
    verb = "would retry" if args.dry_run else "retried"
    print(f"{verb} {len(results)} run(s)")


async def waits_of(engine: Engine, items: Sequence[RunSummary]) -> dict[UUID, RunWaits]:
    """What each listed run waits for (one read)."""
    return await run_waits(engine.runtime.reads, [r.run_id for r in items])


async def delete_command(engine: Engine, args: argparse.Namespace) -> int:
    """``durable runs delete RUN_ID``: a finished run, its children and their records."""
    deleted = await engine.delete_run(args.run_id)
    if args.json:
        print(fmt.as_json({"run_id": args.run_id, "deleted": deleted}))
    else:
        print(f"deleted run {args.run_id} ({deleted} run(s) with its children)")
    return 0


async def workflows_command(engine: Engine, args: argparse.Namespace) -> int:
    """``durable workflows``: registered versions and the live workers serving them."""
    items = await engine.workflows()
    print(fmt.as_json(items) if args.json else fmt.workflows_table(items))
    return 0
