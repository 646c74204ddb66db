"""Logs from inside runs: structlog contextvars, the stdlib filter, ``durable.logger``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.contextvars import get_contextvars, merge_contextvars
from structlog.testing import capture_logs

import durable
from durable import step, workflow
from durable._workflow.logging import RUN_LOG_KEYS
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

app_log = structlog.get_logger("tests.app")
std_log = logging.getLogger("tests.durable_logging")


@step(name="log.charge")
async def charge(order: str) -> str:
    app_log.info("charging", order=order)
    std_log.info("charging %s", order)
    return f"charged {order}"


@workflow(name="log.checkout")
async def checkout(order: str) -> str:
    return await charge(order)


@workflow(name="log.resumed")
async def resumed(order: str) -> str:
    durable.logger.info("before charge", order=order)
    await charge(order)
    durable.logger.bind(stage="middle").info("after charge")
    result = await support.park_once()
    durable.logger.info("after park", result=result)
    return result


WORKFLOWS = [checkout, resumed]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def std_records() -> Iterator[Records]:
    handler = Records()
    handler.addFilter(durable.RunContextFilter())
    std_log.addHandler(handler)
    std_log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        std_log.removeHandler(handler)


def events(logs: list[MutableMapping[str, Any]], *names: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] in names]


async def test_user_logs_inside_steps_carry_the_run_keys(
    make_engine: EngineFactory, std_records: Records
) -> None:
    async with make_engine(*WORKFLOWS) as engine:
        with capture_logs(processors=[merge_contextvars]) as logs:
            handle = await engine.start(checkout, "o-1")
            assert await handle.result(timeout=10) == "charged o-1"

    [entry] = events(logs, "charging")
    assert entry["run_id"] == str(handle.run_id)
    assert entry["workflow"] == "log.checkout"
    assert entry["run_attempt"] == 1
    assert entry["step_attempt"] == 1
    assert entry["cursor"] == "step:log.charge#0"
    assert entry["order"] == "o-1"

    [record] = [r for r in std_records.records if r.getMessage() == "charging o-1"]
    assert record.run_id == str(handle.run_id)  # type: ignore[attr-defined]
    assert record.workflow == "log.checkout"  # type: ignore[attr-defined]
    assert record.run_attempt == 1  # type: ignore[attr-defined]
    assert record.step_attempt == 1  # type: ignore[attr-defined]
    assert record.cursor == "step:log.charge#0"  # type: ignore[attr-defined]
    # Nothing leaks out of the execution into the caller's context.
    assert not set(RUN_LOG_KEYS) & get_contextvars().keys()


async def test_durable_logger_is_silent_while_replaying(make_engine: EngineFactory) -> None:
    async with make_engine(*WORKFLOWS) as engine:
        with capture_logs(processors=[merge_contextvars]) as logs:
            handle = await engine.start(resumed, "o-2")
            assert await handle.result(timeout=10) == "resumed"

    lines = events(logs, "before charge", "after charge", "after park")
    # Attempt 1 logged up to the park; attempt 2 replayed those lines silently.
    assert [(e["event"], e["run_attempt"]) for e in lines] == [
        ("before charge", 1),
        ("after charge", 1),
        ("after park", 2),
    ]
    assert lines[1]["stage"] == "middle"
    assert lines[1]["cursor"] == "step:log.charge#0"
    assert lines[2]["cursor"] == "step:park_once#0"
    assert all(e["run_id"] == str(handle.run_id) for e in lines)
    # The step ran once: its own log line is not repeated either.
    assert len(events(logs, "charging")) == 1


async def test_log_during_replay_keeps_replayed_lines(make_engine: EngineFactory) -> None:
    async with make_engine(*WORKFLOWS, log_during_replay=True) as engine:
        with capture_logs(processors=[merge_contextvars]) as logs:
            handle = await engine.start(resumed, "o-3")
            assert await handle.result(timeout=10) == "resumed"

    lines = events(logs, "before charge", "after charge", "after park")
    assert [(e["event"], e["run_attempt"]) for e in lines] == [
        ("before charge", 1),
        ("after charge", 1),
        ("before charge", 2),
        ("after charge", 2),
        ("after park", 2),
    ]


def test_durable_logger_outside_a_run_logs_normally() -> None:
    with capture_logs() as logs:
        durable.logger.bind(a=1).warning("plain", b=2)
    assert logs == [{"event": "plain", "a": 1, "b": 2, "log_level": "warning"}]


def test_filter_outside_a_run_sets_none() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert durable.RunContextFilter().filter(record)
    assert [getattr(record, key) for key in RUN_LOG_KEYS] == [None] * 5


def test_engine_lifecycle_logs_use_the_stdlib_durable_logger() -> None:
    from durable._client import client as _client
    from durable._worker import poller as _worker

    assert _client._log.name == "durable"
    assert _worker._log.name.startswith("durable.")
