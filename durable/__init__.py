"""durable: durable functions for Python on your own Postgres.

Decorate ``async def`` functions with ``@workflow`` and ``@step``; their progress is
recorded in Postgres, so a run resumes after a crash, a deploy or a long sleep and recorded
calls return at once instead of running again.
"""

from durable._client.client import Client
from durable._client.event_stream import EventKind, StreamEvent
from durable._client.handles import RunHandle
from durable._client.housekeeping import RunNotFinished, WorkflowInfo
from durable._client.management import ForwardKind, ForwardResult, Health, RetryKind, RetryResult
from durable._client.queues import QueueConfig
from durable._client.schedules import ScheduleInfo, Schedules
from durable._client.webhooks import WebhookEndpoint, Webhooks
from durable._engine import Engine
from durable._foundation import version as _version
from durable._foundation.hooks import (
    HookEvent,
    Hooks,
    RunCancelledEvent,
    RunCompletedEvent,
    RunEvent,
    RunFailedEvent,
    RunResumedEvent,
    RunStartedEvent,
    RunSuspendedEvent,
    StepCompletedEvent,
    StepEvent,
    StepFailedEvent,
    StepRetryingEvent,
    StepStartedEvent,
)
from durable._foundation.views import (
    AttemptInfo,
    Page,
    Progress,
    RunDetail,
    RunStatus,
    RunSummary,
    SignalInfo,
    StepInfo,
)
from durable._run_workers import run_workers
from durable._worker.worker import Worker
from durable._workflow.children import ChildLimitExceeded
from durable._workflow.context import CurrentRun, CurrentStep, current_run, current_step
from durable._workflow.decorators import (
    RetryPolicy,
    Step,
    Workflow,
    WorkflowOptions,
    step,
    workflow,
)
from durable._workflow.logging import RunContextFilter, logger
from durable._workflow.poll import PollResult, poll
from durable._workflow.progress import set_progress
from durable._workflow.recorded import now, patched, random, uuid4
from durable._workflow.signals import SignalDelivery, SignalKind, set_event, wait_for_signal
from durable._workflow.timers import pause, sleep, sleep_until
from durable.errors import (
    DurableCallInStep,
    DurableError,
    ErrorInfo,
    InvalidSchedule,
    LeaseLost,
    NonDeterminismError,
    NonRetryableError,
    PayloadTooLarge,
    RunAttemptsExhausted,
    RunCancelled,
    RunNotFound,
    ScheduleNotFound,
    SerializationError,
    SignalTimeout,
    StepFailed,
    StepTimeout,
    UnknownWorkflow,
    WebhookDeliveryFailed,
    WorkflowFailed,
    WorkflowTimeout,
)

__version__ = _version.VERSION

__all__ = [
    "AttemptInfo",
    "ChildLimitExceeded",
    "Client",
    "CurrentRun",
    "CurrentStep",
    "DurableCallInStep",
    "DurableError",
    "Engine",
    "ErrorInfo",
    "EventKind",
    "ForwardKind",
    "ForwardResult",
    "Health",
    "HookEvent",
    "Hooks",
    "InvalidSchedule",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryableError",
    "Page",
    "PayloadTooLarge",
    "PollResult",
    "Progress",
    "QueueConfig",
    "RetryKind",
    "RetryPolicy",
    "RetryResult",
    "RunAttemptsExhausted",
    "RunCancelled",
    "RunCancelledEvent",
    "RunCompletedEvent",
    "RunContextFilter",
    "RunDetail",
    "RunEvent",
    "RunFailedEvent",
    "RunHandle",
    "RunNotFinished",
    "RunNotFound",
    "RunResumedEvent",
    "RunStartedEvent",
    "RunStatus",
    "RunSummary",
    "RunSuspendedEvent",
    "ScheduleInfo",
    "ScheduleNotFound",
    "Schedules",
    "SerializationError",
    "SignalDelivery",
    "SignalInfo",
    "SignalKind",
    "SignalTimeout",
    "Step",
    "StepCompletedEvent",
    "StepEvent",
    "StepFailed",
    "StepFailedEvent",
    "StepInfo",
    "StepRetryingEvent",
    "StepStartedEvent",
    "StepTimeout",
    "StreamEvent",
    "UnknownWorkflow",
    "WebhookDeliveryFailed",
    "WebhookEndpoint",
    "Webhooks",
    "Worker",
    "Workflow",
    "WorkflowFailed",
    "WorkflowInfo",
    "WorkflowOptions",
    "WorkflowTimeout",
    "current_run",
    "current_step",
    "logger",
    "now",
    "patched",
    "pause",
    "poll",
    "random",
    "run_workers",
    "set_event",
    "set_progress",
    "sleep",
    "sleep_until",
    "step",
    "uuid4",
    "wait_for_signal",
    "workflow",
]
