"""Lifecycle hooks: in-process callbacks on the real transitions of runs and steps.

A ``Hooks`` object holds callbacks, each registered for one or more event classes (a base
class such as ``RunEvent`` or ``HookEvent`` matches all of its subclasses). Give it to the
engine (``Engine(hooks=...)``, or register on ``engine.hooks``) to see every run, or to
one workflow (``@workflow(hooks=...)``) to see that workflow's runs only.

Events are frozen dataclasses. They are emitted once per real transition and never while
a run replays its records; ``durable._runs.hook_dispatch`` delivers them off the run's path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from durable.errors import ErrorInfo

__all__ = [
    "Entry",
    "HookEvent",
    "Hooks",
    "RunCancelledEvent",
    "RunCompletedEvent",
    "RunEvent",
    "RunFailedEvent",
    "RunResumedEvent",
    "RunStartedEvent",
    "RunSuspendedEvent",
    "StepCompletedEvent",
    "StepEvent",
    "StepFailedEvent",
    "StepRetryingEvent",
    "StepStartedEvent",
    "check_hooks",
]

E = TypeVar("E", bound="HookEvent")
R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class HookEvent:
    """What every lifecycle event carries."""

    run_id: UUID
    workflow: str
    """The workflow's registered name."""
    version: int
    """The workflow version the run is pinned to."""
    attempt: int
    """The run's execution attempt (1 for its first execution, +1 per later claim)."""
    at: datetime
    """When the transition happened (this process's clock, UTC)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent(HookEvent):
    """Base class of the run events: register for it to receive all of them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStartedEvent(RunEvent):
    """The run's first execution began (its body is about to run for the first time)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResumedEvent(RunEvent):
    """A later execution of the run began: after a park (sleep, signal wait, child wait,
    pause), an automatic or manual retry, or the loss of a worker."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCompletedEvent(RunEvent):
    """The run's result was stored."""

    duration: float | None = None
    """Seconds since the run's first execution began (None when unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailedEvent(RunEvent):
    """The run failed for good (a failure that ``@workflow(retries=)`` retries is not one)."""

    error: ErrorInfo
    duration: float | None = None
    """Seconds since the run's first execution began (None when unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancelledEvent(RunEvent):
    """The run was cancelled (fired in the process that called ``cancel``, once for the run
    and once for each unfinished child it cancelled)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSuspendedEvent(RunEvent):
    """The run parked: this execution ends and the run resumes when woken."""

    status: str
    """``sleeping``, ``waiting`` or ``paused``."""
    wake_at: datetime | None = None
    """When it is due again at the latest (None: only a signal, a child or an operator
    wakes it)."""
    waiting_for: tuple[str, ...] = ()
    """``signal:<name>`` and ``child:<run id>`` entries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEvent(HookEvent):
    """Base class of the step events: register for it to receive all of them."""

    step: str
    """The step's name."""
    cursor_key: str
    """The step call's cursor key, e.g. ``step:charge#0``."""
    step_attempt: int
    """The step's own attempt (1 for the first)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStartedEvent(StepEvent):
    """A step attempt's body is about to run (a step replayed from its record never is)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCompletedEvent(StepEvent):
    """A step attempt returned and its result was recorded."""

    duration: float
    """Seconds from the attempt's start to its record."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRetryingEvent(StepEvent):
    """A step attempt failed and was recorded; the step runs again after ``retry_in``."""

    error: ErrorInfo
    duration: float
    retry_in: float
    """Seconds until the next attempt."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFailedEvent(StepEvent):
    """A step's last attempt failed and was recorded: the workflow sees the error."""

    error: ErrorInfo
    duration: float


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered callback and the event classes it receives."""

    kinds: tuple[type[HookEvent], ...]
    fn: Callable[[Any], object]
    is_async: bool = field(default=False)

    @property
    def label(self) -> str:
        """The callback's name, for log lines."""
        return getattr(self.fn, "__qualname__", None) or repr(self.fn)


class Hooks:
    """Callbacks on lifecycle events, sync or async, each taking one event object.

    Register with the decorator ``@hooks.on(RunCompletedEvent)`` (several classes, or a base
    class like ``RunEvent``, widen it) or with ``hooks.add(RunFailedEvent, notify)``. Async
    callbacks are awaited; sync ones run in a worker thread, so a blocking call does not
    stall the event loop. A callback that raises is logged and changes nothing else.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: tuple[Entry, ...] = ()

    def on(self, *kinds: type[E]) -> Callable[[Callable[[E], R]], Callable[[E], R]]:
        """Decorator: register the function for events of ``kinds``; returns it unchanged."""
        checked = _check_kinds(kinds)

        def register(fn: Callable[[E], R]) -> Callable[[E], R]:
            self._register(checked, fn)
            return fn

        return register

    def add(self, kind: type[E], fn: Callable[[E], object], /, *more: type[E]) -> None:
        """Register ``fn`` for events of ``kind`` (and of ``more`` classes)."""
        self._register(_check_kinds((kind, *more)), fn)

    def _register(self, kinds: tuple[type[HookEvent], ...], fn: Callable[[Any], object]) -> None:
        if not callable(fn):
            raise TypeError(f"a hook must be a callable taking one event, not {fn!r}")
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
        # A new tuple, never mutated: a dispatcher iterating the old one is unaffected.
        self._entries = (*self._entries, Entry(kinds, fn, is_async))

    def matching(self, event: HookEvent) -> list[Entry]:
        """The callbacks registered for this event's class, in registration order."""
        return [entry for entry in self._entries if isinstance(event, entry.kinds)]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<durable Hooks: {len(self._entries)} callback(s)>"


def _check_kinds(kinds: tuple[type[Any], ...]) -> tuple[type[HookEvent], ...]:
    if not kinds:
        raise TypeError("name the event classes to receive, e.g. hooks.on(RunCompletedEvent)")
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, HookEvent)):
            raise TypeError(
                f"hooks receive lifecycle events (subclasses of durable.HookEvent), not {kind!r}"
            )
    return tuple(kinds)


def check_hooks(hooks: object, what: str) -> Hooks | None:
    """``hooks`` if it is a ``Hooks`` (or None), else a clear TypeError."""
    if hooks is not None and not isinstance(hooks, Hooks):
        raise TypeError(f"{what} takes a durable.Hooks object, not {hooks!r}")
    return hooks
