"""``run_workers`` and the supervisor refuse bad input before starting any process."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest

from durable import Engine, run_workers, step, workflow
from durable._worker.supervisor import USAGE_EXIT, Supervisor


@step(name="run_workers.noop_step")
async def noop_step() -> None:
    return None


@workflow(name="run_workers.noop")
async def noop() -> None:
    await noop_step()


def _client_only() -> Engine:
    return Engine("postgresql://nobody@127.0.0.1:1/none", workflows=[noop], worker=False)


def _nothing_to_serve() -> Engine:
    return Engine("postgresql://nobody@127.0.0.1:1/none", workflows=[])


def _not_an_engine() -> Any:
    return "engine"


def _usage_error() -> int:
    return USAGE_EXIT


@pytest.mark.parametrize(
    ("app", "options", "error", "message"),
    [
        (_client_only, {"processes": 0}, ValueError, "processes must be a positive integer"),
        (_client_only, {"processes": True}, ValueError, "processes must be a positive integer"),
        (_client_only, {"stop_timeout": -1}, ValueError, "stop_timeout must not be negative"),
        (42, {"processes": 2}, TypeError, "a factory returning an Engine or 'module:attr'"),
        (_not_an_engine, {"processes": 2}, TypeError, "must return an Engine, not str"),
        (_client_only, {"processes": 2}, ValueError, "Engine(worker=False): it has no worker"),
        (_nothing_to_serve, {"processes": 2}, ValueError, "registers no workflow"),
        ("no_such_module_xyz:engine", {"processes": 2}, ValueError, "cannot load app"),
        ("tests.unit.test_run_workers", {"processes": 2}, ValueError, "must be 'module:attr'"),
        ("tests.unit.test_run_workers:USAGE_EXIT", {}, TypeError, "neither an Engine nor"),
        ("tests.unit.test_run_workers:_client_only", {}, ValueError, "it has no worker"),
    ],
)
def test_bad_input_is_refused_before_any_process_starts(
    app: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_workers(app, **options)
    assert multiprocessing.active_children() == []


def test_run_workers_refuses_a_running_event_loop() -> None:
    import asyncio

    async def inside() -> None:
        run_workers(_client_only, processes=2)

    with pytest.raises(RuntimeError, match="outside any event loop"):
        asyncio.run(inside())
    assert multiprocessing.active_children() == []


def test_run_workers_refuses_a_thread_other_than_main() -> None:
    raised: list[BaseException] = []

    def call() -> None:
        try:
            run_workers(_client_only, processes=2)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert len(raised) == 1
    assert isinstance(raised[0], RuntimeError)
    assert "main thread" in str(raised[0])


def test_a_child_with_a_usage_error_stops_the_supervisor_with_status_2() -> None:
    # Restarting a misconfigured child cannot help: the supervisor gives up at once.
    assert Supervisor(_usage_error, processes=2).run() == USAGE_EXIT
    assert multiprocessing.active_children() == []


def test_the_supervisor_needs_one_process_at_least() -> None:
    with pytest.raises(ValueError, match="processes must be at least 1"):
        Supervisor(_usage_error, processes=0)
