"""The ``Hooks`` registry and its refusals of bad input (no database needed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

import durable
from durable import (
    Engine,
    HookEvent,
    Hooks,
    RunCompletedEvent,
    RunEvent,
    RunStartedEvent,
    StepEvent,
    StepStartedEvent,
)


def started() -> RunStartedEvent:
    return RunStartedEvent(run_id=uuid4(), workflow="w", version=1, attempt=1, at=datetime.now(UTC))


def test_callbacks_match_by_event_class_and_base_class_in_order() -> None:
    hooks = Hooks()
    calls: list[str] = []

    @hooks.on(RunStartedEvent)
    def first(event: RunStartedEvent) -> None:
        calls.append("first")

    @hooks.on(RunEvent)
    async def every_run_event(event: RunEvent) -> None:
        calls.append("runs")

    hooks.add(StepEvent, lambda event: calls.append("steps"))
    hooks.add(RunCompletedEvent, lambda event: None, StepStartedEvent)
    matched = [entry.fn for entry in hooks.matching(started())]
    assert matched == [first, every_run_event]
    assert [entry.is_async for entry in hooks.matching(started())] == [False, True]
    assert len(hooks) == 4
    assert first.__name__ == "first"  # the decorator returns the function unchanged


def test_events_are_frozen() -> None:
    event = started()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.attempt = 2  # type: ignore[misc]


@pytest.mark.parametrize("kind", [int, object, "RunStartedEvent", durable.RunCancelled])
def test_only_event_classes_can_be_hooked(kind: Any) -> None:
    hooks = Hooks()
    with pytest.raises(TypeError, match="HookEvent"):
        hooks.on(kind)
    with pytest.raises(TypeError, match="HookEvent"):
        hooks.add(kind, print)
    assert len(hooks) == 0


def test_a_hook_must_name_a_kind_and_be_callable() -> None:
    hooks = Hooks()
    with pytest.raises(TypeError, match="name the event classes"):
        hooks.on()
    with pytest.raises(TypeError, match="callable"):
        hooks.add(HookEvent, "print")  # type: ignore[arg-type]
    assert len(hooks) == 0


def test_engine_and_workflow_refuse_what_is_not_hooks() -> None:
    with pytest.raises(TypeError, match="Hooks"):
        Engine("postgresql://nowhere/db", hooks=[print])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hook_queue_size"):
        Engine("postgresql://nowhere/db", hook_queue_size=0)
    with pytest.raises(TypeError, match="Hooks"):
        durable.workflow(hooks={"on": print})  # type: ignore[call-overload]


def test_an_empty_hooks_object_given_to_the_engine_is_the_one_it_keeps() -> None:
    hooks = Hooks()
    engine = Engine("postgresql://nowhere/db", hooks=hooks)
    assert engine.hooks is hooks
    assert isinstance(Engine("postgresql://nowhere/db").hooks, Hooks)
