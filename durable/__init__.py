"""durable: durable functions for Python on your own Postgres.

Decorate ``async def`` functions with :func:`workflow` and :func:`step`; their progress is
recorded in Postgres, so a run resumes after a crash, a deploy or a long sleep and recorded
calls return at once instead of running again.
"""

from durable._children import ChildLimitExceeded
from durable._context import CurrentRun, current_run
from durable._decorators import RetryPolicy, Step, Workflow, step, workflow
from durable._engine import Engine
from durable._handles import RunHandle
from durable._logging import RunContextFilter, logger
from durable._management import ForwardKind, ForwardResult, Health, RetryKind, RetryResult
from durable._queues import QueueConfig
from durable._recorded import now, patched, random, uuid4
from durable._schedules import ScheduleInfo, Schedules
from durable._signals import SignalDelivery, SignalKind, set_event, wait_for_signal
from durable._timers import sleep, sleep_until
from durable._views import Page, RunDetail, RunStatus, RunSummary, StepInfo
from durable.errors import (
    DurableCallInStep,
    DurableError,
    ErrorInfo,
    InvalidSchedule,
    LeaseLost,
    NonDeterminismError,
    NonRetryableError,
    PayloadTooLarge,
    RunCancelled,
    RunNotFound,
    ScheduleNotFound,
    SerializationError,
    SignalTimeout,
    StepFailed,
    StepTimeout,
    UnknownWorkflow,
    WorkflowFailed,
)

__all__ = [
    "ChildLimitExceeded",
    "CurrentRun",
    "DurableCallInStep",
    "DurableError",
    "Engine",
    "ErrorInfo",
    "ForwardKind",
    "ForwardResult",
    "Health",
    "InvalidSchedule",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryableError",
    "Page",
    "PayloadTooLarge",
    "QueueConfig",
    "RetryKind",
    "RetryPolicy",
    "RetryResult",
    "RunCancelled",
    "RunContextFilter",
    "RunDetail",
    "RunHandle",
    "RunNotFound",
    "RunStatus",
    "RunSummary",
    "ScheduleInfo",
    "ScheduleNotFound",
    "Schedules",
    "SerializationError",
    "SignalDelivery",
    "SignalKind",
    "SignalTimeout",
    "Step",
    "StepFailed",
    "StepInfo",
    "StepTimeout",
    "UnknownWorkflow",
    "Workflow",
    "WorkflowFailed",
    "current_run",
    "logger",
    "now",
    "patched",
    "random",
    "set_event",
    "sleep",
    "sleep_until",
    "step",
    "uuid4",
    "wait_for_signal",
    "workflow",
]

__version__ = "0.1.0"
