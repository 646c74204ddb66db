"""Every attempt of a step is kept: ``get_run`` lists each attempt with its error, oldest
first, and ``durable runs show`` prints them (the dashboard's side is in
``test_dashboard_http.py``)."""

from __future__ import annotations

import pytest

from durable import AttemptInfo, Engine, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.test_cli import cli

pytestmark = pytest.mark.anyio


@step(retries=3, initial_interval=0.01, max_interval=0.01)
async def flaky() -> str:
    key = support.run_key("flaky")
    support.CALLS[key] += 1
    if support.CALLS[key] <= 2:
        raise ConnectionError(f"flaky attempt {support.CALLS[key]} failed")
    return "third time lucky"


@step
async def steady() -> int:
    return 7


@workflow(name="attempts.flaky")
async def flaky_flow() -> str:
    return await flaky()


@workflow(name="attempts.steady")
async def steady_flow() -> int:
    return await steady()


@workflow(name="attempts.flaky_then_steady")
async def flaky_then_steady() -> str:
    return f"{await flaky()} {await steady()}"


WORKFLOWS = [flaky_flow, steady_flow, flaky_then_steady]


def _errors(attempts: list[AttemptInfo]) -> list[str | None]:
    return [None if a.error is None else a.error.message for a in attempts]


@pytest.mark.parametrize("inline_wait", [5.0, 0.0], ids=["in-process", "parked"])
async def test_a_step_that_failed_twice_keeps_all_three_attempts(
    make_engine: EngineFactory, inline_wait: float
) -> None:
    async with make_engine(*WORKFLOWS, inline_wait_seconds=inline_wait) as engine:
        handle = await engine.start(flaky_flow)
        assert await handle.result(timeout=10) == "third time lucky"
        detail = await engine.get_run(handle.run_id)

    [info] = detail.steps
    assert (info.status, info.attempt) == ("completed", 3)
    assert [(a.attempt, a.status) for a in info.attempts] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "completed"),
    ]
    assert _errors(info.attempts) == [
        "flaky attempt 1 failed",
        "flaky attempt 2 failed",
        None,
    ]
    assert all(a.error.type.endswith("ConnectionError") for a in info.attempts[:2] if a.error)
    starts = [a.started_at for a in info.attempts]
    assert all(s is not None for s in starts)
    assert starts == sorted(starts)  # type: ignore[type-var]
    assert info.started_at == starts[0]  # the step started with its first attempt
    assert info.finished_at == info.attempts[-1].finished_at


async def test_a_step_that_succeeds_at_once_has_one_attempt(engine: Engine) -> None:
    handle = await engine.start(steady_flow)
    assert await handle.result(timeout=10) == 7
    [info] = (await engine.get_run(handle.run_id)).steps
    assert [(a.attempt, a.status, a.error) for a in info.attempts] == [(1, "completed", None)]
    assert info.attempts[0].started_at == info.started_at


async def test_runs_show_prints_every_attempt_with_its_error(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(flaky_flow)
    assert await handle.result(timeout=10) == "third time lucky"
    shown = await cli(database_url, "runs", "show", str(handle.run_id))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "step:flaky#0: 3 attempts, completed" in out
    first = out.index("flaky attempt 1 failed")
    second = out.index("flaky attempt 2 failed")
    assert first < second < out.index("attempt 3  completed")


async def test_a_fork_keeps_the_attempts_of_the_records_it_reuses(engine: Engine) -> None:
    source = await engine.start(flaky_then_steady)
    assert await source.result(timeout=10) == "third time lucky 7"
    forked = await engine.fork(source.run_id, from_step="step:steady#0")
    assert await forked.result(timeout=10) == "third time lucky 7"
    reused, rerun = (await engine.get_run(forked.run_id)).steps
    assert _errors(reused.attempts) == [
        "flaky attempt 1 failed",
        "flaky attempt 2 failed",
        None,
    ]
    assert [a.attempt for a in rerun.attempts] == [1]
