"""``@workflow`` and ``@step``: ordinary async functions made durable.

Both decorators keep the function's signature (``ParamSpec``), so editors and type checkers
see the real parameters. A step or workflow takes its cursor key when it is *called*, not
when it is awaited, so ``asyncio.gather`` over durable calls gets the same keys on every
replay.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload
from uuid import UUID

from durable._foundation.codec import Signature
from durable._foundation.cron import check_scheduled_workflow
from durable._foundation.hooks import Hooks, check_hooks
from durable._foundation.limits import check_text
from durable._foundation.validate import exception_types, real, seconds, whole
from durable._foundation.validate import name as check_name
from durable._runs.registry import default_registry
from durable._runs.start_options import NO_OPTIONS
from durable._workflow import context as _context
from durable._workflow.children import run_child
from durable._workflow.replay import run_step
from durable._workflow.start_options import WorkflowOptions, start_workflow

if TYPE_CHECKING:
    from durable._client.handles import RunHandle

__all__ = [
    "RetryPolicy",
    "Step",
    "Workflow",
    "WorkflowOptions",
    "check_retries",
    "step",
    "workflow",
    "workflow_list",
]

P = ParamSpec("P")
R = TypeVar("R")
Count = TypeVar("Count", int, int | None)
Duration = float | int | timedelta | str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failing step is retried: exponential backoff with jitter between attempts."""

    retries: int = 0
    """Attempts after the first; 0 runs the step once."""
    backoff: float = 2.0
    initial_interval: float = 1.0
    max_interval: float = 60.0
    retry_on: tuple[type[BaseException], ...] | None = None
    """Only these exception types are retried (None: any Exception)."""

    def __post_init__(self) -> None:
        checked = {
            "retries": whole("retries", self.retries),
            "backoff": real("backoff", self.backoff, low=1.0),
            "initial_interval": real("initial_interval", self.initial_interval),
            "max_interval": real("max_interval", self.max_interval),
            "retry_on": exception_types("retry_on", self.retry_on),
        }
        for option, value in checked.items():
            object.__setattr__(self, option, value)
        if self.initial_interval > self.max_interval:
            raise ValueError(
                "need initial_interval <= max_interval, got "
                f"{self.initial_interval} and {self.max_interval}"
            )

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``jitter`` in [0, 1) spreads retries of many runs: the wait is between half and
        all of the exponential interval.
        """
        try:
            grown = self.initial_interval * self.backoff ** (attempt - 1)
        except OverflowError:
            grown = math.inf
        base = min(self.max_interval, grown)
        return base * (0.5 + jitter / 2)


def check_retries(value: Count, what: str) -> Count:
    """A retry count as given, or a clear error: an int >= 0 (None: not set)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{what} must be an int, not {value!r}")
    if value is not None and value < 0:
        raise ValueError(f"{what} must be >= 0, not {value}")
    return value


def _check_expected_steps(value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"expected_steps must be an int >= 1, not {value!r}")


def _check_async(fn: Callable[..., Any], what: str) -> None:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"@{what} needs an async def function, got {fn!r}")


class Step(Generic[P, R]):
    """A function whose outcome is recorded once per run and cursor key."""

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]],
        *,
        name: str | None,
        retry: RetryPolicy,
        timeout: float | None,
        retries_set: bool = True,
    ) -> None:
        _check_async(fn, "step")
        if name is not None:
            check_name("step name", name)
        self.fn = fn
        self.name = name or fn.__qualname__
        check_text("the step name", self.name)
        self.retry = retry
        self.timeout = timeout
        """None: the workflow's ``step_timeout``, else the engine's default, applies."""
        self.retries_set = retries_set
        """False: ``retries`` was not given, and the workflow's or engine's default applies."""
        self.signature = Signature(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        ctx = _context.workflow_context()
        if ctx is None:  # outside a workflow, or inside a step's body: a plain call
            return _as_coroutine(self.fn(*args, **kwargs))

        return run_step(ctx, self, args, kwargs)

    def __repr__(self) -> str:
        return f"<durable step {self.name!r}>"


class Workflow(Generic[P, R]):
    """A durable function: its runs survive crashes, deploys and long waits."""

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]],
        *,
        name: str | None,
        version: int,
        queue: str,
        timeout: float | None,
        schedule: str | None,
        timezone: str,
        step_timeout: float | None = None,
        step_retries: int | None = None,
        retry: RetryPolicy | None = None,
        expected_steps: int | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        _check_async(fn, "workflow")
        check_hooks(hooks, "@workflow(hooks=)")
        whole("workflow version", version, low=1)
        check_name("workflow queue", queue)
        if name is not None:
            check_name("workflow name", name)
        _check_expected_steps(expected_steps)
        check_retries(step_retries, "step_retries")
        if schedule is not None:  # InvalidSchedule here, at decoration, not in a worker
            check_scheduled_workflow(fn, schedule, timezone)
        self.fn = fn
        self.name = name or f"{_module_name(fn)}.{fn.__qualname__}"
        check_text("the workflow name", self.name)
        self.version = version
        self.queue = queue
        check_text("the queue name", queue)
        self.timeout = timeout
        self.schedule = schedule
        self.timezone = timezone
        self.step_timeout = step_timeout
        """The timeout of this workflow's steps that set none (None: the engine's)."""
        self.step_retries = step_retries
        """The retries of this workflow's steps that set none (None: the engine's)."""
        self.retry = retry or RetryPolicy()
        """How a failed run is retried automatically (``retries=0``: never)."""
        self.expected_steps = expected_steps
        """Steps a run is expected to complete: progress is completed / expected."""
        self.hooks = hooks
        """Lifecycle hooks that see this workflow's runs only (beside the engine's)."""
        self.signature = Signature(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Inside a workflow: run a child run and return its result. Outside: run the body
        directly as a plain coroutine (steps then run as plain coroutines too)."""
        ctx = _context.current()
        if ctx is None:
            return _as_coroutine(self.fn(*args, **kwargs))
        _context.refuse_in_step(f"child workflow {self.name}")

        child: Coroutine[Any, Any, R] = run_child(ctx, self, args, kwargs, wait=True)
        return child

    async def start(self, *args: P.args, **kwargs: P.kwargs) -> RunHandle[R]:
        """Start a run on the running engine and return its handle at once.

        Inside a workflow this starts a child run without waiting for it. To give the run
        options (idempotency key, tags, delay, queue, priority, ...) use ``wf.options()``.
        """
        return await start_workflow(self, NO_OPTIONS, args, kwargs)

    def options(
        self,
        *,
        idempotency_key: str | None = None,
        tags: Sequence[str] | None = None,
        delay: Duration | None = None,
        queue: str | None = None,
        priority: int | None = None,
        concurrency_key: str | None = None,
        timeout: Duration | None = None,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: UUID | None = None,
    ) -> WorkflowOptions[P, R]:
        """This workflow with start options bound, checked now (as ``engine.start`` checks
        them): ``await wf.options(idempotency_key="order-42").start(order)``. The result is
        immutable and reusable, and ``.options()`` on it sets more (later values win)."""
        return WorkflowOptions(self).options(
            idempotency_key=idempotency_key, tags=tags, delay=delay, queue=queue,
            priority=priority, concurrency_key=concurrency_key, timeout=timeout,
            resource_id=resource_id, metadata=metadata, run_id=run_id,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"<durable workflow {self.name!r} v{self.version}>"


def workflow_list(values: Iterable[object], what: str = "workflows") -> list[Workflow[..., Any]]:
    """``values`` as a list of workflows, or a ``TypeError`` naming the first that is not one.

    Parameters taking workflows are typed ``Iterable[object]`` on purpose: mypy joins a
    plain ``[wf_a, wf_b]`` of different signatures to ``list[object]`` (its join of two
    ``ParamSpec`` arguments is ``object``), and such a list must pass without annotation.
    """
    if isinstance(values, str | bytes | Workflow):
        raise TypeError(f"{what} must be a list of @workflow functions, not {values!r}")
    out: list[Workflow[..., Any]] = []
    for value in values:
        if not isinstance(value, Workflow):
            raise TypeError(f"{what} must hold @workflow functions, got {value!r}")
        out.append(value)
    return out


def _module_name(fn: Callable[..., Any]) -> str:
    """The importable module name: ``python -m app.flows`` runs ``app.flows`` as
    ``__main__``, and its workflows must keep the names the workers know them by."""
    module = fn.__module__
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            return str(spec.name)
    return module


async def _as_coroutine(awaitable: Awaitable[R]) -> R:
    return await awaitable


@overload
def step(fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retries: int | None = None,
    backoff: float = 2.0,
    initial_interval: float = 1.0,
    max_interval: float = 60.0,
    timeout: Duration | None = None,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Step[P, R]]: ...
def step(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int | None = None,
    backoff: float = 2.0,
    initial_interval: float = 1.0,
    max_interval: float = 60.0,
    timeout: Duration | None = None,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] | None = None,
) -> Step[P, R] | Callable[[Callable[P, Awaitable[R]]], Step[P, R]]:
    """Make an async function a durable step: recorded once per run and cursor key.

    Called inside a workflow, its result (or final error) is stored and never recomputed for
    that run. Called anywhere else it is a plain coroutine. Failed attempts are retried
    ``retries`` times with exponential backoff and jitter; ``NonRetryableError`` (or an
    exception outside ``retry_on``) stops at once. ``timeout`` cancels the body and raises
    ``StepTimeout``. Left out (None), ``retries`` and ``timeout`` come from the workflow's
    ``step_retries``/``step_timeout``, else the engine's ``default_step_retries``/
    ``default_step_timeout``; a step's own values always win.
    """
    retry_types = exception_types("retry_on", retry_on)
    check_retries(retries, "retries")
    policy = RetryPolicy(retries or 0, backoff, initial_interval, max_interval, retry_types)
    limit = None if timeout is None else seconds("step timeout", timeout, positive=True)

    def decorate(func: Callable[P, Awaitable[R]]) -> Step[P, R]:
        return Step(func, name=name, retry=policy, timeout=limit, retries_set=retries is not None)

    return decorate(fn) if fn is not None else decorate


@overload
def workflow(fn: Callable[P, Awaitable[R]], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    version: int = 1,
    queue: str = "default",
    timeout: Duration | None = None,
    schedule: str | None = None,
    timezone: str = "UTC",
    step_timeout: Duration | None = None,
    step_retries: int | None = None,
    retries: int = 0,
    backoff: float = 2.0,
    initial_interval: float = 1.0,
    max_interval: float = 60.0,
    expected_steps: int | None = None,
    hooks: Hooks | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Workflow[P, R]]: ...
def workflow(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    version: int = 1,
    queue: str = "default",
    timeout: Duration | None = None,
    schedule: str | None = None,
    timezone: str = "UTC",
    step_timeout: Duration | None = None,
    step_retries: int | None = None,
    retries: int = 0,
    backoff: float = 2.0,
    initial_interval: float = 1.0,
    max_interval: float = 60.0,
    expected_steps: int | None = None,
    hooks: Hooks | None = None,
) -> Workflow[P, R] | Callable[[Callable[P, Awaitable[R]]], Workflow[P, R]]:
    """Make an async function a durable workflow, registered under ``name``.

    The default name is ``module.qualname``. Runs are pinned to ``version``; ``queue``
    chooses which workers run it; ``timeout`` bounds a run's total time, from its start
    (``engine.start(timeout=)`` overrides it per run, ``Engine(default_workflow_timeout=)``
    applies when neither is set): a run past it fails with ``WorkflowTimeout``. ``schedule`` (a
    cron expression, read in ``timezone``) starts one run per tick; an invalid expression
    or zone raises ``InvalidSchedule`` here. ``step_timeout`` and ``step_retries`` apply to
    the workflow's steps that set no ``timeout``/``retries`` of their own (over the engine's
    ``default_step_timeout``/``default_step_retries``).

    ``retries`` retries a failed run automatically from the step that failed (as
    ``engine.retry`` does, keeping every other record), up to that many times, waiting
    ``initial_interval * backoff ** (n - 1)`` seconds (capped at ``max_interval``,
    jittered) before retry ``n``. ``NonRetryableError``, ``NonDeterminismError``,
    ``WorkflowTimeout`` and ``RunAttemptsExhausted`` are final.

    ``expected_steps`` turns the count of completed steps into a progress fraction
    (``handle.progress()``) when the workflow declares none with ``durable.set_progress``.

    ``hooks`` (a ``durable.Hooks``) are lifecycle callbacks for this workflow's runs only,
    called beside the engine's own (see ``docs/hooks.md``).
    """
    limit = None if timeout is None else seconds("workflow timeout", timeout, positive=True)
    step_limit = (
        None if step_timeout is None else seconds("step_timeout", step_timeout, positive=True)
    )
    check_retries(retries, "retries")
    _check_expected_steps(expected_steps)
    run_retry = RetryPolicy(retries, backoff, initial_interval, max_interval)
    check_retries(step_retries, "step_retries")
    check_hooks(hooks, "@workflow(hooks=)")

    def decorate(func: Callable[P, Awaitable[R]]) -> Workflow[P, R]:
        wf = Workflow(
            func,
            name=name,
            version=version,
            queue=queue,
            timeout=limit,
            schedule=schedule,
            timezone=timezone,
            step_timeout=step_limit,
            step_retries=step_retries,
            retry=run_retry,
            expected_steps=expected_steps,
            hooks=hooks,
        )
        default_registry.add(wf)
        return wf

    return decorate(fn) if fn is not None else decorate
