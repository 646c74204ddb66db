"""Every option is checked where it is given: finite, in range and of the right type, with a
message naming it. A bad value never reaches the database or a worker (invariant 8)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from durable import Engine, step, workflow

NAN, INF = math.nan, math.inf


async def _body() -> None:
    return None


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": 2.5}, TypeError, "concurrency"),
        ({"concurrency": True}, TypeError, "concurrency"),
        ({"concurrency": "4"}, TypeError, "concurrency"),
        ({"concurrency": 1 << 40}, ValueError, "concurrency"),
        ({"lease_seconds": NAN}, ValueError, "lease_seconds"),
        ({"lease_seconds": INF}, ValueError, "lease_seconds"),
        ({"lease_seconds": 0}, ValueError, "lease_seconds"),
        ({"lease_seconds": "30"}, TypeError, "lease_seconds"),
        ({"heartbeat_seconds": NAN}, ValueError, "heartbeat_seconds"),
        ({"heartbeat_seconds": 30.0}, ValueError, "heartbeat_seconds"),
        ({"poll_interval": NAN}, ValueError, "poll_interval"),
        ({"poll_interval": INF}, ValueError, "poll_interval"),
        ({"poll_interval": -1}, ValueError, "poll_interval"),
        ({"poll_interval": None}, TypeError, "poll_interval"),
        ({"inline_wait_seconds": NAN}, ValueError, "inline_wait_seconds"),
        ({"inline_wait_seconds": -0.5}, ValueError, "inline_wait_seconds"),
        ({"shutdown_grace_seconds": INF}, ValueError, "shutdown_grace_seconds"),
        ({"shutdown_grace_seconds": NAN}, ValueError, "shutdown_grace_seconds"),
        ({"max_child_depth": -1}, ValueError, "max_child_depth"),
        ({"max_child_depth": 2.0}, TypeError, "max_child_depth"),
        ({"max_children_per_run": False}, TypeError, "max_children_per_run"),
        ({"max_input_bytes": 0}, ValueError, "max_input_bytes"),
        ({"max_output_bytes": 1.5}, TypeError, "max_output_bytes"),
        ({"max_signal_bytes": INF}, TypeError, "max_signal_bytes"),
        ({"pool_size": 0}, ValueError, "pool_size"),
        ({"pool_size": 2.5}, TypeError, "pool_size"),
        ({"retention": 0}, ValueError, "retention"),
        ({"retention": NAN}, ValueError, "retention"),
        ({"retention": "forever"}, ValueError, "retention"),
        ({"retention": timedelta(days=-1)}, ValueError, "retention"),
        ({"queues": []}, ValueError, "queue"),
        ({"queues": "default"}, TypeError, "queues"),
        ({"queues": ["ok", ""]}, ValueError, "queue"),
    ],
    ids=repr,
)
def test_engine_rejects_a_bad_option(options: dict[str, Any], error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        Engine("postgresql://unused/db", workflows=[], **options)


def test_engine_accepts_sane_options() -> None:
    engine = Engine(
        "postgresql://unused/db", workflows=[], concurrency=4, lease_seconds=10,
        heartbeat_seconds=2.5, poll_interval=0.5, inline_wait_seconds=0,
        shutdown_grace_seconds=0, retention="7d", pool_size=3,
    )  # fmt: skip
    assert engine.settings.concurrency == 4
    assert engine.settings.lease_seconds == 10.0
    assert engine.settings.retention_seconds == 7 * 86400


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"retries": -1}, ValueError, "retries"),
        ({"retries": 1.5}, TypeError, "retries"),
        ({"retries": True}, TypeError, "retries"),
        ({"backoff": NAN}, ValueError, "backoff"),
        ({"backoff": 0.5}, ValueError, "backoff"),
        ({"backoff": "2"}, TypeError, "backoff"),
        ({"initial_interval": NAN}, ValueError, "initial_interval"),
        ({"initial_interval": -1}, ValueError, "initial_interval"),
        ({"max_interval": INF}, ValueError, "max_interval"),
        ({"initial_interval": 10, "max_interval": 5}, ValueError, "initial_interval"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": NAN}, ValueError, "timeout"),
        ({"timeout": INF}, ValueError, "timeout"),
        ({"timeout": "soon"}, ValueError, "timeout"),
        ({"retry_on": "ValueError"}, TypeError, "retry_on"),
        ({"retry_on": (ValueError, 3)}, TypeError, "retry_on"),
        ({"name": ""}, ValueError, "name"),
        ({"name": 3}, TypeError, "name"),
    ],
    ids=repr,
)
def test_step_rejects_a_bad_option(options: dict[str, Any], error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        step(**options)(_body)


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": NAN}, ValueError, "timeout"),
        ({"timeout": INF}, ValueError, "timeout"),
        ({"timeout": timedelta(days=-2)}, ValueError, "timeout"),
        ({"version": 1.5}, TypeError, "version"),
        ({"version": True}, TypeError, "version"),
        ({"version": 0}, ValueError, "version"),
        ({"queue": ""}, ValueError, "queue"),
        ({"queue": None}, TypeError, "queue"),
        ({"name": ""}, ValueError, "name"),
    ],
    ids=repr,
)
def test_workflow_rejects_a_bad_option(options: dict[str, Any], error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        workflow(**options)(_body)


def test_step_and_workflow_accept_durations() -> None:
    s = step(retries=3, backoff=1.5, initial_interval=0.5, max_interval=10, timeout="30s")(_body)
    assert (s.retry.retries, s.timeout) == (3, 30.0)
    w = workflow(name="options.sane", timeout=timedelta(hours=1))(_body)
    assert w.timeout == 3600.0
