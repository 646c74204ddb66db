"""A run's history as a versioned JSON document: what ``durable runs export`` writes and
what ``durable.testing.Replayer`` replays.

Format ``durable.history`` version 1, one JSON object per run::

    {
      "format": "durable.history",
      "format_version": 1,
      "exported_at": "2026-11-27T11:00:00+00:00",
      "run_id": "3f0c...", "workflow": "checkout", "version": 1,
      "input": {"args": [...], "kwargs": {...}},
      "records": [                       # every recorded durable call, in call order
        {"key": "step:charge#0", "seq": 0, "kind": "step", "name": "charge",
         "status": "completed", "output": {...}, "error": null, "attempt": 1,
         "retry_at": null, "started_at": "...", "finished_at": "..."}
      ],
      "signals": [{"name": "approve", "seq": 1, "payload": true,
                   "consumed_by": "signal:approve#0", "created_at": "..."}],
      "events": {"progress": 0.5},
      "children": ["7a1e..."],
      "outcome": {"status": "completed", "output": {...}, "error": null},
      "attempt": 2, "parent_run_id": null,
      "created_at": "...", "started_at": "...", "finished_at": "..."
    }

Payloads (input, outputs, errors, signal payloads, event values) are the JSON stored in
Postgres, unchanged. ``outcome.status`` is the run's status when it was exported: a run
still in flight (``sleeping``, ``waiting``, ...) has a history that ends early. A reader
refuses a document of another format or of a newer format version with ``InvalidHistory``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from durable.errors import DurableError

__all__ = [
    "FINISHED_STATUSES",
    "FORMAT",
    "FORMAT_VERSION",
    "History",
    "HistoryRecord",
    "HistorySignal",
    "InvalidHistory",
    "history_from_rows",
    "read_history",
]

FORMAT = "durable.history"
FORMAT_VERSION = 1
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})
_STATUSES = FINISHED_STATUSES | {"pending", "running", "sleeping", "waiting", "paused"}


class InvalidHistory(DurableError, ValueError):
    """A document is not a durable run history this version can read (not JSON, another
    format, a newer format version, or a missing or mistyped field, named in the message)."""

    code = "invalid_history"


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One recorded durable call of the run (a row of ``durable.steps``)."""

    key: str
    seq: int
    kind: str
    name: str
    status: str
    output: Any = None
    error: Any = None
    attempt: int = 1
    retry_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    earlier_attempts: tuple[Any, ...] = ()
    """The step's retried attempts, oldest first (``attempt``, ``error``, ``started_at``,
    ``finished_at``); optional in the format: histories without it have none."""


@dataclass(frozen=True, slots=True)
class HistorySignal:
    """A signal sent to the run; ``consumed_by`` is the cursor key of the wait that took it."""

    name: str
    seq: int
    payload: Any
    consumed_by: str | None
    created_at: str | None = None


@dataclass(frozen=True)
class History:
    """Everything recorded about one run, in the ``durable.history`` format.

    Build one with ``engine.export_run(run_id)`` or ``History.load(path)``; write it with
    ``to_json()``. ``status``, ``output`` and ``error`` are the run's outcome when exported.
    """

    run_id: UUID
    workflow: str
    version: int
    input: Any
    status: str
    records: tuple[HistoryRecord, ...] = ()
    signals: tuple[HistorySignal, ...] = ()
    events: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[UUID, ...] = ()
    output: Any = None
    error: Any = None
    attempt: int = 0
    parent_run_id: UUID | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exported_at: str | None = None

    @property
    def finished(self) -> bool:
        """True when the run had completed, failed or been cancelled when exported."""
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON-ready data (see the module docstring for its layout)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "exported_at": self.exported_at,
            "run_id": str(self.run_id),
            "workflow": self.workflow,
            "version": self.version,
            "input": self.input,
            "records": [_record_dict(r) for r in self.records],
            "signals": [_signal_dict(s) for s in self.signals],
            "events": dict(self.events),
            "children": [str(c) for c in self.children],
            "outcome": {"status": self.status, "output": self.output, "error": self.error},
            "attempt": self.attempt,
            "parent_run_id": None if self.parent_run_id is None else str(self.parent_run_id),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The document as JSON text (payloads keep their key order)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the document to ``path`` (UTF-8 JSON, parent directories created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json() + "\n", encoding="utf-8")
        return target

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the history") -> History:
        """Read a parsed document; ``InvalidHistory`` names what is wrong and where."""
        return _Reader(source).history(data)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "the history") -> History:
        """Parse JSON text; ``InvalidHistory`` when it is not JSON or not a history."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidHistory(f"{source} is not JSON: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> History:
        """Read a history file (``OSError`` when it cannot be read)."""
        source = str(path)
        return cls.from_json(Path(path).read_bytes(), source=source)


def _record_dict(record: HistoryRecord) -> dict[str, Any]:
    return {
        "key": record.key,
        "seq": record.seq,
        "kind": record.kind,
        "name": record.name,
        "status": record.status,
        "output": record.output,
        "error": record.error,
        "attempt": record.attempt,
        "retry_at": record.retry_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    } | ({"earlier_attempts": list(record.earlier_attempts)} if record.earlier_attempts else {})


def _signal_dict(signal: HistorySignal) -> dict[str, Any]:
    return {
        "name": signal.name,
        "seq": signal.seq,
        "payload": signal.payload,
        "consumed_by": signal.consumed_by,
        "created_at": signal.created_at,
    }


class _Reader:
    """Validates a parsed document field by field, naming the first problem it finds."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str) -> InvalidHistory:
        return InvalidHistory(f"{self.source}: {message}")

    def get(self, data: Mapping[str, Any], name: str, kind: Any, where: str = "") -> Any:
        if name not in data:
            raise self.fail(f"{where}missing field {name!r}")
        value = data[name]
        # bool is an int in Python; a count or position is never true/false.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{where}field {name!r} has the wrong type: {value!r}")
        return value

    def optional(self, data: Mapping[str, Any], name: str, kind: Any, where: str = "") -> Any:
        if data.get(name) is None:
            return None
        return self.get(data, name, kind, where)

    def uuid(self, value: Any, where: str) -> UUID:
        try:
            return UUID(str(value))
        except ValueError:
            raise self.fail(f"{where} is not a run id: {value!r}") from None

    def history(self, data: Any) -> History:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise self.fail(
                f'not a durable run history (expected a JSON object with "format": '
                f'"{FORMAT}"; export one with `durable runs export RUN_ID`)'
            )
        version = self.get(data, "format_version", int)
        if version > FORMAT_VERSION:
            raise self.fail(
                f"format version {version} is newer than this durable reads "
                f"({FORMAT_VERSION}): upgrade durable"
            )
        if version < 1:
            raise self.fail(f"invalid format version {version}")
        outcome = self.get(data, "outcome", dict)
        status = self.get(outcome, "status", str, "outcome: ")
        if status not in _STATUSES:
            raise self.fail(f"outcome: unknown run status {status!r}")
        records = tuple(self.record(r, i) for i, r in enumerate(self.get(data, "records", list)))
        self.check_positions(records)
        parent = data.get("parent_run_id")
        return History(
            run_id=self.uuid(self.get(data, "run_id", str), "run_id"),
            workflow=self.get(data, "workflow", str),
            version=self.get(data, "version", int),
            input=self.get(data, "input", dict),
            status=status,
            records=records,
            signals=tuple(self.signal(s, i) for i, s in enumerate(data.get("signals") or [])),
            events=dict(self.optional(data, "events", dict) or {}),
            children=tuple(
                self.uuid(c, "children") for c in self.optional(data, "children", list) or []
            ),
            output=outcome.get("output"),
            error=outcome.get("error"),
            attempt=self.optional(data, "attempt", int) or 0,
            parent_run_id=None if parent is None else self.uuid(parent, "parent_run_id"),
            created_at=self.optional(data, "created_at", str),
            started_at=self.optional(data, "started_at", str),
            finished_at=self.optional(data, "finished_at", str),
            exported_at=self.optional(data, "exported_at", str),
        )

    def record(self, data: Any, index: int) -> HistoryRecord:
        where = f"records[{index}]: "
        if not isinstance(data, dict):
            raise self.fail(f"{where}expected an object, got {data!r}")
        return HistoryRecord(
            key=self.get(data, "key", str, where),
            seq=self.get(data, "seq", int, where),
            kind=self.get(data, "kind", str, where),
            name=self.get(data, "name", str, where),
            status=self.get(data, "status", str, where),
            output=data.get("output"),
            error=data.get("error"),
            attempt=self.optional(data, "attempt", int, where) or 1,
            retry_at=self.optional(data, "retry_at", str, where),
            started_at=self.optional(data, "started_at", str, where),
            finished_at=self.optional(data, "finished_at", str, where),
            earlier_attempts=tuple(self.optional(data, "earlier_attempts", list, where) or ()),
        )

    def check_positions(self, records: Sequence[HistoryRecord]) -> None:
        keys: set[str] = set()
        seqs: set[int] = set()
        for record in records:
            if record.key in keys or record.seq in seqs:
                raise self.fail(f"two records share key {record.key!r} or position {record.seq}")
            keys.add(record.key)
            seqs.add(record.seq)

    def signal(self, data: Any, index: int) -> HistorySignal:
        where = f"signals[{index}]: "
        if not isinstance(data, dict):
            raise self.fail(f"{where}expected an object, got {data!r}")
        return HistorySignal(
            name=self.get(data, "name", str, where),
            seq=self.get(data, "seq", int, where),
            payload=data.get("payload"),
            consumed_by=self.optional(data, "consumed_by", str, where),
            created_at=self.optional(data, "created_at", str, where),
        )


# -- reading a run from the database's rows -------------------------------------------------


def _json(raw: Any) -> Any:
    """A payload column as read: JSON text (json or jsonb alike) or already a value."""
    return json.loads(raw) if isinstance(raw, str) else raw


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def history_from_rows(
    run: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    children: Sequence[UUID],
    signals: Sequence[Mapping[str, Any]],
) -> History:
    """The history of one run from the rows ``Store.run_history`` read in one snapshot."""
    return History(
        run_id=run["id"],
        workflow=run["workflow_name"],
        version=run["workflow_version"],
        input=_json(run["input"]),
        status=run["status"],
        records=tuple(
            HistoryRecord(
                key=s["cursor_key"],
                seq=s["seq"],
                kind=s["kind"],
                name=s["name"],
                status=s["status"],
                output=_json(s["output"]),
                error=_json(s["error"]),
                attempt=s["attempt"],
                retry_at=_time(s["retry_at"]),
                started_at=_time(s["started_at"]),
                finished_at=_time(s["finished_at"]),
                earlier_attempts=tuple(_json(s.get("earlier_attempts")) or ()),
            )
            for s in steps
        ),
        signals=tuple(
            HistorySignal(
                name=g["name"],
                seq=g["seq"],
                payload=_json(g["payload"]),
                consumed_by=g["consumed_by"],
                created_at=_time(g["created_at"]),
            )
            for g in signals
        ),
        events={e["key"]: _json(e["value"]) for e in events},
        children=tuple(children),
        output=_json(run["output"]),
        error=_json(run["error"]),
        attempt=run["attempt"],
        parent_run_id=run["parent_run_id"],
        created_at=_time(run["created_at"]),
        started_at=_time(run["started_at"]),
        finished_at=_time(run["finished_at"]),
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


class HistoryRows(Protocol):
    """What reads a run's rows for its history (``Store.run_history``)."""

    async def run_history(self, run_id: UUID) -> tuple[Any, Any, Any, Any, Any]: ...


async def read_history(store: HistoryRows, run_id: UUID) -> History | None:
    """The history of run ``run_id`` read from the database (None: no such run)."""
    run, steps, events, children, signals = await store.run_history(run_id)
    if run is None:
        return None
    return history_from_rows(run, steps, events, children, signals)
