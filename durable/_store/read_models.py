"""The public read models (``RunSummary``, ``RunDetail``, ``StepInfo``, ``SignalInfo``)
built from the store's rows: the only place their column names are read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from durable._foundation.codec import decode_error, decode_json
from durable._foundation.views import (
    AttemptInfo,
    RunDetail,
    RunStatus,
    RunSummary,
    SignalInfo,
    StepInfo,
    progress_of,
)
from durable.errors import ErrorInfo

__all__ = ["detail_from_rows", "signal_infos", "step_info", "summary_from_row"]


def _common(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["id"],
        "workflow": row["workflow_name"],
        "version": row["workflow_version"],
        "status": RunStatus(row["status"]),
        "error": decode_error(row["error"]),
        "tags": list(row["tags"]),
        "attempt": row["attempt"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "parent_run_id": row["parent_run_id"],
        "queue": row["queue"],
        "version_available": row["version_available"],
        "resource_id": row.get("resource_id"),
        "metadata": decode_json(row.get("metadata")),
    }


def summary_from_row(row: Mapping[str, Any]) -> RunSummary:
    return RunSummary(**_common(row))


def detail_from_rows(
    run: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    children: list[UUID],
) -> RunDetail:
    return RunDetail(
        **_common(run),
        input=decode_json(run["input"]),
        output=decode_json(run["output"]),
        steps=[step_info(s) for s in steps],
        children=children,
        events={e["key"]: decode_json(e["value"]) for e in events},
        forked_from=run.get("forked_from"),
        previous_errors=_errors(run.get("previous_errors")),
        progress=progress_of(
            run["status"],
            sum(1 for s in steps if s["kind"] == "step" and s["status"] == "completed"),
            run.get("progress_fraction"),
            run.get("progress_message"),
            run.get("expected_steps"),
        ),
    )


def step_info(row: Mapping[str, Any]) -> StepInfo:
    """The public view of one ``run_steps`` row, with every attempt of the step."""
    latest = AttemptInfo(
        attempt=row["attempt"],
        status=row["status"],
        error=decode_error(row["error"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
    attempts = [*_earlier_attempts(row.get("earlier_attempts")), latest]
    return StepInfo(
        cursor_key=row["cursor_key"],
        kind=row["kind"],
        name=row["name"],
        status=row["status"],
        attempt=row["attempt"],
        started_at=attempts[0].started_at,
        finished_at=row["finished_at"],
        output=decode_json(row["output"]),
        error=latest.error,
        attempts=attempts,
    )


def _earlier_attempts(raw: str | None) -> list[AttemptInfo]:
    """The ``earlier_attempts`` JSON array (retried attempts, oldest first)."""
    if not raw:
        return []
    return [
        AttemptInfo(
            attempt=item["attempt"],
            status="retrying",
            error=decode_error(item.get("error")),
            started_at=_timestamp(item.get("started_at")),
            finished_at=_timestamp(item.get("finished_at")),
        )
        for item in json.loads(raw)
    ]


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _errors(raw: str | None) -> list[ErrorInfo]:
    """The ``previous_errors`` JSON array as ``ErrorInfo`` values."""
    if not raw:
        return []
    found = (decode_error(item) for item in json.loads(raw))
    return [error for error in found if error is not None]


def signal_infos(rows: Sequence[Mapping[str, Any]]) -> list[SignalInfo]:
    """The public view of a run's signal rows."""
    return [
        SignalInfo(
            name=r["name"],
            seq=r["seq"],
            payload=decode_json(r["payload"]),
            status=_signal_status(r),
            consumed_by=r["consumed_by"],
            rejected=r["rejected"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


def _signal_status(row: Mapping[str, Any]) -> str:
    if row["rejected"] is not None:
        return "rejected"
    return "pending" if row["consumed_by"] is None else "consumed"
