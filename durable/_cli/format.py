"""What the ``durable`` command prints: run tables, a run's timeline, schedules, JSON.

Plain text with aligned columns; statuses are coloured with ANSI codes only when asked
(``durable.cli`` decides: a terminal, ``NO_COLOR`` unset, or ``FORCE_COLOR`` set).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from durable._client.housekeeping import WorkflowInfo
from durable._client.schedules import ScheduleInfo
from durable._foundation.durations import format_duration as duration
from durable._foundation.views import AttemptInfo, RunDetail, RunSummary, SignalInfo, StepInfo
from durable.errors import ErrorInfo

__all__ = ["as_json", "duration", "run_detail", "runs_table", "schedules_table"]

_COLOURS = {
    "completed": "32",  # green
    "failed": "31",  # red
    "cancelled": "90",  # grey
    "running": "36",  # cyan
    "pending": "34",  # blue
    "sleeping": "35",  # magenta
    "waiting": "33",  # yellow
    "paused": "33;1",  # bold yellow
}


def paint(text: str, status: str | None, color: bool) -> str:
    """``text`` in the colour of ``status`` when ``color`` is on."""
    code = _COLOURS.get(str(status)) if color else None
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(sep=" ", timespec="seconds")


def _table(headers: Sequence[str], rows: list[list[str]], colour_col: int | None = None,
           statuses: Sequence[str] = (), color: bool = False) -> str:  # fmt: skip
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for i, row in enumerate(rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        if colour_col is not None:
            cells[colour_col] = paint(cells[colour_col], statuses[i], color)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def runs_table(items: Sequence[RunSummary], color: bool) -> str:
    """One line per run: id, workflow, status, created, duration, attempt, tags."""
    if not items:
        return "no runs match"
    rows = [
        [
            str(r.run_id),
            f"{r.workflow}@{r.version}",
            str(r.status),
            _when(r.created_at),
            duration(_span(r.started_at, r.finished_at)),
            str(r.attempt),
            ",".join(r.tags),
        ]
        for r in items
    ]
    headers = ["RUN ID", "WORKFLOW", "STATUS", "CREATED", "TOOK", "ATTEMPT", "TAGS"]
    if any(r.resource_id is not None for r in items):  # a column only where runs are scoped
        headers.append("RESOURCE")
        for row, r in zip(rows, items, strict=True):
            row.append(r.resource_id or "")
    return _table(headers, rows, 2, [str(r.status) for r in items], color)


def _error(error: ErrorInfo | None) -> str:
    return "" if error is None else f"{error.type}: {error.message}"


def attempt_line(attempt: AttemptInfo) -> str:
    """One attempt of a step: number, status (retrying: failed and retried), time, error."""
    took = duration(_span(attempt.started_at, attempt.finished_at))
    error = _error(attempt.error)
    return f"attempt {attempt.attempt}  {attempt.status:<9}  {took:>7}" + (
        f"  {error}" if error else ""
    )


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _steps(steps: Sequence[StepInfo], color: bool) -> str:
    rows = [
        [
            str(i),
            s.cursor_key,
            s.status,
            str(s.attempt),
            duration(_span(s.started_at, s.finished_at)),
            _error(s.error) or _short(s.output),
        ]
        for i, s in enumerate(steps)
    ]
    headers = ["#", "CURSOR KEY", "STATUS", "ATTEMPT", "TOOK", "RESULT / ERROR"]
    return _table(headers, rows, 2, [s.status for s in steps], color)


def run_detail(detail: RunDetail, children: Sequence[RunSummary], color: bool) -> str:
    """The run's fields, its steps timeline with durations and errors, children, events."""
    took = duration(_span(detail.started_at, detail.finished_at))
    lines = [
        f"run       {detail.run_id}",
        f"workflow  {detail.workflow}@{detail.version}  (queue {detail.queue})",
        f"status    {paint(str(detail.status), str(detail.status), color)}"
        f"  (attempt {detail.attempt})",
        f"created   {_when(detail.created_at)}",
        f"started   {_when(detail.started_at)}",
        f"finished  {_when(detail.finished_at)}  (took {took})",
    ]
    if detail.tags:
        lines.append(f"tags      {', '.join(detail.tags)}")
    if detail.resource_id is not None:
        lines.append(f"resource  {detail.resource_id}")
    if detail.metadata:
        lines.append(f"metadata  {_short(detail.metadata, 200)}")
    if detail.parent_run_id:
        lines.append(f"parent    {detail.parent_run_id}")
    if detail.forked_from:
        lines.append(f"forked    from {detail.forked_from}")
    lines.append(f"input     {_short(detail.input, 200)}")
    if detail.output is not None:
        lines.append(f"output    {_short(detail.output, 200)}")
    if detail.error is not None:
        lines.append(f"error     {paint(_error(detail.error), 'failed', color)}")
    if detail.previous_errors:  # one per retried attempt, automatic or engine.retry
        lines += ["", "failed attempts retried"]
        lines += [f"  {n}. {_error(e)}" for n, e in enumerate(detail.previous_errors, 1)]
    lines += ["", "steps", _indent(_steps(detail.steps, color)) if detail.steps else "  none"]
    if children:
        lines += ["", "children", _indent(runs_table(children, color))]
    if detail.events:
        lines += ["", "events"] + [f"  {k} = {_short(v)}" for k, v in detail.events.items()]
    if detail.signals:
        lines += ["", "signals"] + [_signal(s, color) for s in detail.signals]
    return "\n".join(lines)


def _signal(info: SignalInfo, color: bool) -> str:
    status = "failed" if info.status == "rejected" else "completed"
    head = f"  {info.name} #{info.seq}  {paint(info.status, status, color)}"
    if info.consumed_by:
        head += f" by {info.consumed_by}"
    head += f"  {_short(info.payload)}"
    if info.rejected:
        reason = " ".join(info.rejected.split())
        head += f"\n    {reason if len(reason) <= 200 else reason[:197] + '...'}"
    return head


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def schedules_table(items: Sequence[ScheduleInfo], color: bool) -> str:
    """One line per schedule: name, workflow, cron and zone, state, next tick, last run."""
    if not items:
        return "no schedules"
    rows = [
        [
            s.name,
            s.workflow,
            f"{s.cron} ({s.timezone})",
            "paused" if s.paused else "active",
            _when(s.next_fire_at),
            str(s.last_status or "-"),
            s.overlap,
        ]
        for s in items
    ]
    headers = ["NAME", "WORKFLOW", "CRON", "STATE", "NEXT TICK", "LAST RUN", "OVERLAP"]
    return _table(headers, rows, 3, ["paused" if s.paused else "" for s in items], color)


def workflows_table(items: Sequence[WorkflowInfo]) -> str:
    """One line per registered (name, version): queue, live workers, last seen."""
    if not items:
        return "no workflows registered"
    rows = [
        [w.name, str(w.version), w.queue, str(len(w.workers)), _when(w.last_seen_at)] for w in items
    ]
    return _table(["WORKFLOW", "VERSION", "QUEUE", "WORKERS", "LAST SEEN"], rows)


def as_json(value: Any) -> str:
    """Dataclasses, UUIDs, datetimes and enums as indented JSON."""
    return json.dumps(_plain(value), indent=2, default=str)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID | datetime):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    return value
