"""Public errors of durable.

Every error derives from ``DurableError`` and carries a stable ``code``
string that is safe to match on, log, or return from an API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "DurableCallInStep",
    "DurableError",
    "ErrorInfo",
    "InvalidSchedule",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryableError",
    "PayloadTooLarge",
    "RunAttemptsExhausted",
    "RunCancelled",
    "RunNotFound",
    "ScheduleNotFound",
    "SerializationError",
    "SignalTimeout",
    "StepFailed",
    "StepTimeout",
    "UnknownWorkflow",
    "WebhookDeliveryFailed",
    "WorkflowFailed",
    "WorkflowTimeout",
]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A recorded error: what a failed step or run stored in Postgres."""

    type: str
    """Qualified name of the exception type, e.g. ``"builtins.ValueError"``."""
    message: str
    code: str | None = None
    """The ``code`` attribute of a durable error, or None for other exceptions."""
    traceback: str | None = None

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


class DurableError(Exception):
    """Base class of every error raised by durable."""

    code: ClassVar[str] = "durable_error"


class NonRetryableError(DurableError):
    """Raise (or subclass) inside a step to fail it at once, without further retries."""

    code = "non_retryable"


class StepFailed(DurableError):
    """A step failed and its original exception type cannot be rebuilt.

    ``error`` carries the recorded type, message and traceback.
    """

    code = "step_failed"

    def __init__(self, error: ErrorInfo, *, cursor_key: str | None = None) -> None:
        where = f" at {cursor_key}" if cursor_key else ""
        super().__init__(f"step failed{where}: {error}")
        self.error = error
        self.cursor_key = cursor_key


class StepTimeout(DurableError, TimeoutError):
    """A step's body ran longer than its ``timeout`` and was cancelled."""

    code = "step_timeout"


class WorkflowFailed(DurableError):
    """Raised by ``handle.result()`` (and by a child call) when a run failed.

    ``error`` carries the recorded error of the run.
    """

    code = "workflow_failed"

    def __init__(self, run_id: Any, error: ErrorInfo) -> None:
        super().__init__(f"run {run_id} failed: {error}")
        self.run_id = run_id
        self.error = error


class WorkflowTimeout(DurableError, TimeoutError):
    """A run exceeded its timeout (``@workflow(timeout=)``, ``engine.start(timeout=)`` or
    ``Engine(default_workflow_timeout=)``).

    The run ends ``failed`` with this error's code; the step running at that moment is
    cancelled and so are the run's unfinished children, as ``engine.cancel`` would.
    """

    code = "workflow_timeout"


class RunAttemptsExhausted(DurableError):
    """A poison run: its last ``attempts`` executions in a row ended with their lease
    expired before they recorded, parked or finished anything (a worker killed, out of
    memory, a lost lease). The run ends ``failed`` instead of crash-looping workers; see
    ``Engine(max_run_attempts=)``. ``engine.retry`` gives it a fresh count.
    """

    code = "run_attempts_exhausted"

    def __init__(self, run_id: Any, attempts: int) -> None:
        super().__init__(
            f"run {run_id} was given up after {attempts} executions in a row lost their "
            "lease before recording anything (worker killed, out of memory or lease lost)"
        )
        self.run_id = run_id
        self.attempts = attempts


class RunCancelled(DurableError):
    """The run was cancelled; raised by ``handle.result()``."""

    code = "run_cancelled"

    def __init__(self, run_id: Any) -> None:
        super().__init__(f"run {run_id} was cancelled")
        self.run_id = run_id


class SignalTimeout(DurableError, TimeoutError):
    """``wait_for_signal`` reached its timeout before a signal arrived."""

    code = "signal_timeout"


class NonDeterminismError(DurableError):
    """The workflow code took a different path than the one recorded for this run.

    Raised when the durable call reaching a position in the run is not the call
    recorded there; it names the position's cursor key, the recorded call and the new call.
    """

    code = "non_determinism"

    def __init__(self, cursor_key: str, recorded: str, new: str) -> None:
        super().__init__(
            f"non-deterministic workflow at {cursor_key}: the run recorded {recorded!r} "
            f"but the code now calls {new!r}; use durable.patched() or a new workflow "
            "version to change the code of running workflows"
        )
        self.cursor_key = cursor_key
        self.recorded = recorded
        self.new = new


class SerializationError(DurableError, TypeError):
    """A value could not be encoded to (or decoded from) JSON by its type hint."""

    code = "serialization_error"


class PayloadTooLarge(DurableError, ValueError):
    """An encoded input, output or signal payload exceeds the engine's size cap."""

    code = "payload_too_large"

    def __init__(self, what: str, size: int, limit: int) -> None:
        # The constructor's arguments are its args, so a step's PayloadTooLarge is rebuilt
        # from its record (with .size and .limit) on the first run and on every replay.
        super().__init__(what, size, limit)
        self.what = what
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"{self.what} is {self.size} bytes encoded, over the limit of {self.limit} bytes"


class UnknownWorkflow(DurableError, LookupError):
    """No workflow of that name is registered in this process or by any worker."""

    code = "unknown_workflow"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown workflow {name!r}: it is not registered in this process and no "
            "worker has registered it"
        )
        self.name = name


class RunNotFound(DurableError, LookupError):
    """No run has that id."""

    code = "run_not_found"

    def __init__(self, run_id: Any) -> None:
        super().__init__(f"no run with id {run_id}")
        self.run_id = run_id


class LeaseLost(DurableError):
    """This worker no longer holds the run's lease; its writes were refused.

    Raised inside a worker only; the run continues on whichever worker holds it now.
    """

    code = "lease_lost"


class DurableCallInStep(DurableError, RuntimeError):
    """A durable call was made inside a step's body.

    A step runs as one recorded unit: its body may run again until its outcome is recorded,
    and is skipped once it is. A sleep, a signal wait, a child run or start, ``set_event``
    or ``patched`` inside it could never be replayed at a stable position, so it is refused
    at the call (and the step is not retried). Make the call from the workflow instead. A
    step called inside a step is allowed: it runs as a plain call, part of its caller.
    """

    code = "durable_call_in_step"

    def __init__(self, what: str, step_key: str) -> None:
        # The constructor's arguments are its args, so the step's record rebuilds it (the
        # same type, on the first run and on every replay).
        super().__init__(what, step_key)
        self.what = what
        self.step_key = step_key

    def __str__(self) -> str:
        return (
            f"{self.what} cannot be called inside the body of step {self.step_key}: a step "
            "is one recorded unit; make this call from the workflow instead"
        )


class InvalidSchedule(DurableError, ValueError):
    """A schedule's cron expression, time zone or policy is invalid.

    Raised where the schedule is defined (``@workflow(schedule=...)`` or
    ``engine.schedules.create``), never later in a worker.
    """

    code = "invalid_schedule"


class ScheduleNotFound(DurableError, LookupError):
    """No schedule has that name."""

    code = "schedule_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")
        self.name = name


class WebhookDeliveryFailed(DurableError):
    """Every attempt of an outbound webhook delivery failed: the delivery run fails with
    this error (the endpoint id and the last attempt's reason; never the URL or secret)."""

    code = "webhook_delivery_failed"
