"""What a replay found: ``ReplayReport``, and the verdicts that compare how the replayed
code ended with how the recorded run ended."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from durable._foundation.history import FINISHED_STATUSES, History
from durable.errors import NonDeterminismError, StepFailed

__all__ = ["Outcome", "ReplayReport", "raised", "report", "returned", "stopped"]

Outcome = Literal["same", "different", "incomplete"]


@dataclass(frozen=True)
class ReplayReport:
    """What replaying one history against the current code found.

    ``ok`` is False when the code is not compatible with the run: a non-determinism error
    (``error`` names the cursor key, the recorded call and the new call), an outcome that
    differs from the recorded one, or a failure before the body ran (unknown workflow,
    input the new signature refuses). ``outcome`` is ``same`` or ``different`` for a run
    whose outcome the history holds, and ``incomplete`` when the history ends before the
    run's end (a run in flight, or one cancelled or failed from outside its code).
    """

    run_id: Any
    workflow: str
    version: int
    status: str
    """The run's status in the history."""
    ok: bool
    outcome: Outcome
    error: BaseException | None = None
    """Why the replay is not ok, when an exception says it (None when ok)."""
    detail: str = ""
    """One line: what differed, or where the replay stopped."""
    patches: Mapping[str, bool] = field(default_factory=dict)
    """Each ``durable.patched(patch_id)`` the replayed code reached, and its answer."""
    replayed: int = 0
    """Recorded calls the code replayed."""
    stopped_at: str | None = None
    """The first call past the end of the history, if the replay reached one."""
    unused: tuple[str, ...] = ()
    """Recorded calls the code never reached (harmless unless the outcome differs)."""
    source: str | None = None
    """The file the history was read from, if any."""
    code_version: int | None = None
    """The version of the code replayed: the history's own, else the newest of its name."""

    @property
    def nondeterminism(self) -> NonDeterminismError | None:
        """The non-determinism error, if the code diverged from the recorded calls."""
        return self.error if isinstance(self.error, NonDeterminismError) else None

    @property
    def verdict(self) -> str:
        """A short verdict for a table: ``ok``, ``non-determinism``, ``different outcome``..."""
        if self.ok and self.outcome == "incomplete" and self.status not in FINISHED_STATUSES:
            return "ok (in flight)"
        if self.ok:
            return "ok" if self.outcome == "same" else f"ok ({self.outcome})"
        if self.nondeterminism is not None:
            return "non-determinism"
        if self.outcome == "different":
            return "different outcome"
        return "error"

    def describe(self) -> str:
        """A readable account of the replay, for assertion messages and logs."""
        where = f" ({self.source})" if self.source else ""
        lines = [
            f"run {self.run_id} of {self.workflow} v{self.version}{where}, {self.status}: "
            f"{self.verdict}"
        ]
        if self.code_version is not None and self.code_version != self.version:
            lines.append(f"  replayed against version {self.code_version} of the code")
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.patches:
            answers = ", ".join(f"{k}={v}" for k, v in sorted(self.patches.items()))
            lines.append(f"  patched(): {answers}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def stopped(history: History, end: str, source: str | None, extra: dict[str, Any]) -> ReplayReport:
    if history.status == "completed":
        detail = f"the code makes a call the completed run never made: {end}"
        return report(history, source, ok=False, outcome="different", detail=detail, **extra)
    detail = f"replayed up to the end of the history ({end})"
    return report(history, source, ok=True, outcome="incomplete", detail=detail, **extra)


def raised(
    history: History, exc: BaseException, source: str | None, extra: dict[str, Any]
) -> ReplayReport:
    raised = _error_type(exc)
    if history.status == "failed":
        recorded = str((history.error or {}).get("type"))
        if raised == recorded:
            detail = f"fails with {raised}, as recorded"
            return report(history, source, ok=True, outcome="same", detail=detail, **extra)
        detail = f"fails with {raised}: {exc}; the run failed with {recorded}"
    elif history.status == "completed":
        detail = f"fails with {raised}: {exc}; the run completed"
    else:
        detail = f"fails with {raised}: {exc}; the run had not failed ({history.status})"
    return report(history, source, ok=False, outcome="different", error=exc, detail=detail, **extra)


def returned(
    history: History, result_json: str | None, source: str | None, extra: dict[str, Any]
) -> ReplayReport:
    if history.status == "completed":
        result = None if result_json is None else json.loads(result_json)
        if result == history.output:
            return report(history, source, ok=True, outcome="same", **extra)
        detail = f"returns {_short(result)}; the run returned {_short(history.output)}"
        return report(history, source, ok=False, outcome="different", detail=detail, **extra)
    if history.status == "failed":
        recorded = (history.error or {}).get("type")
        detail = f"returns {_short(result_json)}; the run failed with {recorded}"
        return report(history, source, ok=False, outcome="different", detail=detail, **extra)
    detail = f"the code returns where the {history.status} run's history ends"
    return report(history, source, ok=True, outcome="incomplete", detail=detail, **extra)


def _error_type(exc: BaseException) -> str:
    """The recorded type name of an exception; a replayed step failure that could not be
    rebuilt (``StepFailed``) stands for the type it recorded."""
    if isinstance(exc, StepFailed) and type(exc) is StepFailed:
        return exc.error.type
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report(
    history: History, source: str | None, *, ok: bool, outcome: Outcome, **fields: Any
) -> ReplayReport:
    return ReplayReport(
        run_id=history.run_id, workflow=history.workflow, version=history.version,
        status=history.status, ok=ok, outcome=outcome, source=source, **fields,
    )  # fmt: skip
