"""Versioning: runs are pinned to the version that started them, workers claim only the
versions they serve, stranded versions are reported, and ``durable.patched`` changes code
in place for long-lived runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import durable
from durable import Engine, RunStatus, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS, OBSERVED
from tests.acceptance.waits.probes import run_row

pytestmark = pytest.mark.anyio

VERSIONED = "tests.acceptance.waits.versioned"


@workflow(name=VERSIONED, version=1)
async def versioned_v1() -> str:
    return "v1"


@workflow(name=VERSIONED, version=2)
async def versioned_v2() -> str:
    return "v2"


DEPLOYED = {"patch": False}
"""Whether the deployed code has the patch; a test flips it to simulate a deploy."""


@pytest.fixture(autouse=True)
def _old_code() -> Iterator[None]:
    DEPLOYED["patch"] = False
    yield
    DEPLOYED["patch"] = False


@step
async def charge() -> str:
    CALLS["charge"] += 1
    return "charged"


@step
async def send_receipt() -> str:
    CALLS["send_receipt"] += 1
    return "receipt sent"


@workflow
async def checkout() -> list[str]:
    done = [await charge()]
    if DEPLOYED["patch"]:
        patched = durable.patched("send-receipt")
        OBSERVED.append(patched)
        if patched:
            done.append(await send_receipt())
    await durable.sleep(0.3)  # parks: the next execution replays up to here
    return done


WORKFLOWS = [checkout]


# -- pinned versions -------------------------------------------------------------------------


async def test_a_worker_claims_only_the_versions_it_serves(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(versioned_v2, worker="manual") as new_worker:
        worker = new_worker.worker
        assert worker is not None
        old = await new_worker.start(versioned_v1)
        new = await new_worker.start(versioned_v2)
        assert await worker.claim_once() == 1
        assert await new.result(timeout=5) == "v2"
        assert await worker.claim_once() == 0  # the v1 run is due, but not its version

        row = await run_row(database_url, old.run_id)
        assert row["status"] == "pending"
        assert row["attempt"] == 0
        assert row["workflow_version"] == 1

        async with make_engine(versioned_v1):  # an old worker drains the old run
            assert await old.result(timeout=5) == "v1"
        assert (await new_worker.get_run(old.run_id)).version == 1
        assert (await new_worker.get_run(new.run_id)).version == 2


async def test_get_run_reports_a_version_no_worker_serves(make_engine: EngineFactory) -> None:
    async with make_engine(versioned_v2) as new_worker:
        old = await new_worker.start(versioned_v1)
        new = await new_worker.start(versioned_v2)
        await new.result(timeout=5)

        stranded = await new_worker.get_run(old.run_id)
        assert stranded.status == RunStatus.PENDING
        assert stranded.version_available is False  # type: ignore[attr-defined]
        served = await new_worker.get_run(new.run_id)
        assert served.version_available is True  # type: ignore[attr-defined]

        async with make_engine(versioned_v1):
            assert (await new_worker.get_run(old.run_id)).version_available is True  # type: ignore[attr-defined]


async def test_list_runs_reports_a_version_no_worker_serves(make_engine: EngineFactory) -> None:
    async with make_engine(versioned_v2) as new_worker:
        old = await new_worker.start(versioned_v1)
        new = await new_worker.start(versioned_v2)
        await new.result(timeout=5)

        page = await new_worker.list_runs(workflow=VERSIONED)
        by_id = {item.run_id: item for item in page.items}
        assert set(by_id) == {old.run_id, new.run_id}
        assert by_id[old.run_id].version == 1
        assert by_id[old.run_id].version_available is False  # type: ignore[attr-defined]
        assert by_id[new.run_id].version_available is True  # type: ignore[attr-defined]


# -- patched -----------------------------------------------------------------------------------


async def test_patched_is_true_for_runs_that_reach_it_with_the_new_code(engine: Engine) -> None:
    DEPLOYED["patch"] = True
    handle = await engine.start(checkout)
    assert await handle.result(timeout=5) == ["charged", "receipt sent"]
    assert OBSERVED == [True, True]  # first execution, and the replay after the sleep
    assert CALLS["send_receipt"] == 1
    keys = [s.cursor_key for s in (await engine.get_run(handle.run_id)).steps]
    assert keys == ["step:charge#0", "patch:send-receipt#0", "step:send_receipt#0", "sleep#0"]


async def test_patched_is_false_for_a_run_that_went_past_it_with_the_old_code(
    engine: Engine,
) -> None:
    handle = await engine.start(checkout)
    await support.wait_for_status(handle, "sleeping")  # recorded charge and sleep, old code
    DEPLOYED["patch"] = True  # deploy while the run sleeps

    assert await handle.result(timeout=5) == ["charged"]  # no NonDeterminismError
    assert OBSERVED == [False]
    assert CALLS["send_receipt"] == 0
    assert CALLS["charge"] == 1
    keys = [s.cursor_key for s in (await engine.get_run(handle.run_id)).steps]
    assert keys == ["step:charge#0", "sleep#0"]


async def test_patched_needs_a_workflow_and_an_id() -> None:
    with pytest.raises(RuntimeError, match="inside a @workflow"):
        durable.patched("x")
    with pytest.raises(ValueError, match="patch id"):
        durable.patched("")
