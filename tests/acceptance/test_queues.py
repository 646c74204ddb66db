"""Queues: rate limits, per-key concurrency, priority, configuration, and which queues a
worker serves, on real Postgres with the real poller.

Limits hold across workers because the claim enforces them, so the tests that check a
limit run two engines on the same database. Step bodies record what ran and when in
``EXECUTIONS``; the database's first-claim time (``runs.started_at``) is the instant the
rate limit governs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from durable import Engine, QueueConfig, RunStatus, step, workflow
from durable._worker.queue_choice import choose_runs
from durable.testing import shift_clock
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

EXECUTIONS: list[dict[str, Any]] = []
"""One entry per step body execution: label, key, start and end (monotonic seconds)."""


@pytest.fixture(autouse=True)
def _reset_executions() -> Iterator[None]:
    EXECUTIONS.clear()
    yield
    EXECUTIONS.clear()


@step(name="queues_test.hold")
async def hold(label: str, key: str | None, seconds: float) -> str:
    entry: dict[str, Any] = {"label": label, "key": key, "start": time.monotonic()}
    EXECUTIONS.append(entry)
    await anyio.sleep(seconds)
    entry["end"] = time.monotonic()
    return label


@workflow(name="queues_test.task", queue="work")
async def task(label: str, key: str | None = None, seconds: float = 0.0) -> str:
    return await hold(label, key, seconds)


@workflow(name="queues_test.a_task", queue="a")
async def a_task(label: str) -> str:
    return await hold(label, None, 0.0)


@workflow(name="queues_test.b_task", queue="b")
async def b_task(label: str) -> str:
    return await hold(label, None, 0.0)


# Upper bound on the time from a run's claim to its first step body starting.


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = most = 0
    for _, delta in events:
        open_now += delta
        most = max(most, open_now)
    return most


def most_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` inside any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    return max(
        (sum(1 for u in ordered if t <= u < t + window) for t in ordered),
        default=0,
    )


def intervals(keep: Callable[[str | None], bool] = lambda key: True) -> list[tuple[float, float]]:
    """The (start, end) of every recorded execution whose concurrency key ``keep`` accepts."""
    return [(e["start"], e["end"]) for e in EXECUTIONS if keep(e["key"])]


# -- rate limit ------------------------------------------------------------------------------


async def test_rate_limit_holds_within_one_unit_over_any_window(
    make_engine: EngineFactory, database_url: str
) -> None:
    rate, period, runs = 5, 1.0, 15
    async with Engine(database_url, worker=False, workflows=[task]) as client:
        await client.queues.configure("work", rate_limit=(rate, period))
        handles = [await client.start(task, f"r{n}") for n in range(runs)]
        async with make_engine(task, concurrency=8), make_engine(task, concurrency=8):
            with anyio.fail_after(20):
                results = [await h.result(timeout=20) for h in handles]
        assert results == [f"r{n}" for n in range(runs)]
        details = [await client.get_run(h.run_id) for h in handles]

    # Every run's body ran once. When a body starts after its claim depends on how busy the
    # machine is, so the limit is checked on the claims the database recorded.
    assert len(EXECUTIONS) == runs
    # The first claims as the database recorded them (what the claim statement limits).
    claimed = [d.started_at.timestamp() for d in details if d.started_at is not None]
    assert len(claimed) == runs
    in_window = most_in_window(claimed, period)
    assert in_window <= rate, f"{in_window} runs first claimed within {period}s (limit {rate})"
    # Fifteen starts at five per second need at least two full windows after the first.
    assert max(claimed) - min(claimed) >= 2 * period
    assert all(d.attempt == 1 for d in details)


async def test_a_rate_limited_worker_sleeps_until_the_window_frees_not_the_poll(
    make_engine: EngineFactory,
) -> None:
    """Due runs held back only by the rate window are claimed when the window frees room,
    not at the next fallback poll (an hour here): after a claim the rate limit cut short,
    the idle worker's sleep is at most the window (a minute: longer than any claim takes,
    so the window cannot end before the worker asks)."""
    rate, period = 5, 60.0
    async with make_engine(task, worker="manual", poll_interval=3600.0) as engine:
        await engine.queues.configure("work", rate_limit=(rate, period))
        handles = [await engine.start(task, f"r{n}") for n in range(3 * rate)]
        worker = engine.worker
        assert worker is not None
        assert worker.poller is not None
        assert await worker.claim_once() == rate
        assert await worker.claim_once() == 0  # the window is full
        assert 0 < await worker.poller._idle_timeout() <= period
        await shift_clock(engine, period)
        assert await worker.claim_once() == rate  # the window moved on: room again
        assert [await h.status() for h in handles].count(RunStatus.COMPLETED) == 2 * rate


async def test_a_window_that_ended_before_the_idle_check_wakes_the_worker_at_once(
    make_engine: EngineFactory,
) -> None:
    rate, period = 5, 60.0
    async with make_engine(task, worker="manual", poll_interval=3600.0) as engine:
        await engine.queues.configure("work", rate_limit=(rate, period))
        for n in range(3 * rate):
            await engine.start(task, f"r{n}")
        worker = engine.worker
        assert worker is not None
        assert worker.poller is not None
        assert await worker.claim_once() == rate
        await shift_clock(engine, period)  # the claim "took" longer than the window
        assert await worker.poller._idle_timeout() == 0.0  # ten runs are due: claim now
        assert await worker.claim_once() == rate
        assert 0 < await worker.poller._idle_timeout() <= period  # a new window runs


def _manual_worker(engine: Engine) -> Any:
    worker = engine.worker
    assert worker is not None
    assert worker.poller is not None
    return worker


async def _held_elsewhere(engine: Engine, queue: str, workflow_name: str) -> None:
    """Another worker claims one due run of managed ``queue`` (its first claim, counted by
    the rate limit) and holds it under an hour-long lease, executing it nowhere here."""
    taken = await engine.runtime.store.claim_managed(
        queue, "another-worker", 3600.0, 1, [workflow_name], [1], choose_runs
    )
    assert len(taken) == 1


@pytest.mark.parametrize(
    ("limits", "key"),
    [({"concurrency": 1}, None), ({"key_concurrency": 1}, "k")],
    ids=["queue-concurrency-full", "key-concurrency-full"],
)
async def test_an_ended_window_wakes_a_worker_once_when_another_limit_holds_the_runs_back(
    make_engine: EngineFactory, limits: dict[str, int], key: str | None
) -> None:
    """Due runs a worker cannot claim for another limit do not keep an ended window's
    "wake now": the claim that looks at the window forgets it, and the worker then sleeps
    until the next wake it knows (here the held run's lease), not in a loop of claims."""
    period = 60.0
    async with make_engine(task, worker="manual", poll_interval=3600.0) as engine:
        await engine.queues.configure("work", rate_limit=(5, period), **limits)
        for n in range(3):
            await engine.start(task, f"r{n}", concurrency_key=key)
        await _held_elsewhere(engine, "work", "queues_test.task")
        await shift_clock(engine, period)  # the window of that first claim ended
        worker = _manual_worker(engine)
        assert await worker.poller._idle_timeout() == 0.0  # it cannot know before a claim
        assert await worker.claim_once() == 0  # the other limit holds the runs back
        assert await worker.poller._idle_timeout() > period  # the lease, in about an hour
        assert await worker.claim_once() == 0


async def test_an_ended_window_of_runs_a_worker_does_not_claim_does_not_wake_it(
    make_engine: EngineFactory,
) -> None:
    """Only due runs this worker would claim, in a queue it serves, make an ended window
    "wake now": no other worker spins on a queue it never claims from."""
    period = 60.0
    async with (
        make_engine(a_task, worker="manual", queues=["a"]) as serving,
        make_engine(a_task, worker="manual", queues=["work"], poll_interval=3600.0) as other_queue,
        make_engine(task, worker="manual", queues=["a"], poll_interval=3600.0) as other_workflow,
    ):
        await serving.queues.configure("a", rate_limit=(1, period))
        for n in range(3):
            await serving.start(a_task, f"a{n}")
        assert await _manual_worker(serving).claim_once() == 1
        await shift_clock(serving, period, other_queue, other_workflow)
        assert await _manual_worker(serving).poller._idle_timeout() == 0.0
        for engine in (other_queue, other_workflow):
            assert await _manual_worker(engine).poller._idle_timeout() == 3600.0


# -- per-key concurrency ---------------------------------------------------------------------


async def test_runs_of_one_concurrency_key_never_overlap_while_other_keys_run_in_parallel(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(task, concurrency=8) as one, make_engine(task, concurrency=8):
        await one.queues.configure("work", key_concurrency=1)
        handles = [
            await one.start(task, f"c1-{n}", "cust-1", 0.15, concurrency_key="cust-1")
            for n in range(4)
        ]
        handles += [
            await one.start(
                task, f"other-{n}", f"cust-{n + 2}", 0.15, concurrency_key=f"cust-{n + 2}"
            )
            for n in range(4)
        ]
        with anyio.fail_after(15):
            for h in handles:
                await h.result(timeout=15)

    assert len(EXECUTIONS) == 8
    same_key = intervals(lambda key: key == "cust-1")
    assert len(same_key) == 4
    assert max_overlap(same_key) == 1, "runs with concurrency key cust-1 overlapped"
    others = intervals(lambda key: key != "cust-1")
    assert max_overlap(others) >= 2, "runs of different keys did not run in parallel"
    # Other keys were not held back behind cust-1's queue of runs.
    assert max_overlap(intervals()) >= 3


async def test_key_concurrency_two_allows_two_runs_of_a_key_at_once(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(task, concurrency=8) as one, make_engine(task, concurrency=8):
        config = await one.queues.configure("work", key_concurrency=2)
        assert config.key_concurrency == 2
        handles = [
            await one.start(task, f"c1-{n}", "cust-1", 0.15, concurrency_key="cust-1")
            for n in range(6)
        ]
        with anyio.fail_after(15):
            for h in handles:
                await h.result(timeout=15)
    assert max_overlap(intervals(lambda key: key == "cust-1")) == 2


async def test_a_concurrency_key_alone_makes_the_queue_managed_with_one_per_key(
    make_engine: EngineFactory,
) -> None:
    """No configure call: starting a run with a key applies the default key_concurrency=1."""
    async with make_engine(task, concurrency=8) as one, make_engine(task, concurrency=8):
        handles = [
            await one.start(task, f"c1-{n}", "cust-1", 0.1, concurrency_key="cust-1")
            for n in range(4)
        ]
        with anyio.fail_after(15):
            for h in handles:
                await h.result(timeout=15)
        assert await one.queues.get("work") == QueueConfig(
            "work", key_concurrency=1, updated_at=(await one.queues.get("work")).updated_at
        )
    assert max_overlap(intervals(lambda key: key == "cust-1")) == 1


# -- priority --------------------------------------------------------------------------------


@pytest.mark.parametrize("managed", [False, True], ids=["unmanaged", "managed"])
async def test_higher_priority_due_runs_are_claimed_first(
    make_engine: EngineFactory, database_url: str, managed: bool
) -> None:
    async with Engine(database_url, worker=False, workflows=[task]) as client:
        if managed:
            await client.queues.configure("work", concurrency=5)
        handles = [await client.start(task, f"low-{n}", priority=0) for n in range(3)]
        handles.append(await client.start(task, "high", priority=10))
        handles.append(await client.start(task, "middle", priority=5))
        handles.append(await client.start(task, "negative", priority=-1))
        async with make_engine(task, concurrency=1):
            with anyio.fail_after(15):
                for h in handles:
                    await h.result(timeout=15)
    order = [e["label"] for e in EXECUTIONS]
    assert order == ["high", "middle", "low-0", "low-1", "low-2", "negative"]


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": -3}, "concurrency"),
        ({"key_concurrency": 0}, "key_concurrency"),
        ({"key_concurrency": -1}, "key_concurrency"),
        ({"rate_limit": (0, 1.0)}, "rate_limit"),
        ({"rate_limit": (-5, 1.0)}, "rate_limit"),
        ({"rate_limit": (5, 0)}, "rate_limit"),
        ({"rate_limit": (5, -1.0)}, "rate_limit"),
        ({"rate_limit": (5,)}, "rate_limit"),
        ({"rate_limit": (5, 1.0, 2)}, "rate_limit"),
    ],
    ids=repr,
)
async def test_configure_rejects_bad_limits_and_stores_nothing(
    database_url: str, options: dict[str, Any], names: str
) -> None:
    async with Engine(database_url, worker=False, workflows=[task]) as client:
        before = await client.queues.configure("kept", concurrency=3, rate_limit=(10, 60.0))
        with pytest.raises(ValueError, match=names):
            await client.queues.configure("fresh", **options)
        with pytest.raises(ValueError, match=names):
            await client.queues.configure("kept", **options)
        assert await client.queues.list() == [before]
    stored = await support.count_rows(database_url, "SELECT count(*) FROM durable.queues")
    assert stored == 1


@pytest.mark.parametrize("rate_limit", [5, "5/s", ("5", 1.0), (5, "1s")], ids=repr)
async def test_configure_rejects_a_rate_limit_of_the_wrong_type(
    database_url: str, rate_limit: Any
) -> None:
    async with Engine(database_url, worker=False, workflows=[task]) as client:
        with pytest.raises((TypeError, ValueError), match="rate_limit"):
            await client.queues.configure("fresh", rate_limit=rate_limit)
        assert await client.queues.list() == []


@pytest.mark.parametrize("name", ["", None, 3])
async def test_configure_rejects_a_bad_queue_name(database_url: str, name: Any) -> None:
    async with Engine(database_url, worker=False, workflows=[task]) as client:
        with pytest.raises((TypeError, ValueError), match="queue name"):
            await client.queues.configure(name, concurrency=1)
        assert await client.queues.list() == []


async def test_configure_list_and_get_round_trip(database_url: str) -> None:
    async with Engine(database_url, worker=False, workflows=[task]) as client:
        assert await client.queues.list() == []
        unknown = await client.queues.get("nowhere")
        assert unknown == QueueConfig("nowhere")
        assert (unknown.concurrency, unknown.rate_limit, unknown.key_concurrency) == (None, None, 1)

        emails = await client.queues.configure(
            "emails", concurrency=3, rate_limit=(10, 60.0), key_concurrency=2
        )
        assert emails.name == "emails"
        assert emails.concurrency == 3
        assert emails.rate_limit == (10, 60.0)
        assert emails.key_concurrency == 2
        assert emails.updated_at is not None
        assert await client.queues.get("emails") == emails

        billing = await client.queues.configure("billing", rate_limit=(2, 0.5))
        assert (billing.concurrency, billing.rate_limit, billing.key_concurrency) == (
            None,
            (2, 0.5),
            1,
        )
        assert await client.queues.list() == [billing, emails]  # by name

        # Configuring again replaces every limit (omitted ones are cleared).
        replaced = await client.queues.configure("emails", concurrency=1)
        assert (replaced.concurrency, replaced.rate_limit, replaced.key_concurrency) == (
            1,
            None,
            1,
        )
        assert replaced.updated_at is not None
        assert emails.updated_at is not None
        assert replaced.updated_at >= emails.updated_at
        assert await client.queues.get("emails") == replaced
        assert [q.name for q in await client.queues.list()] == ["billing", "emails"]


# -- which queues a worker serves ------------------------------------------------------------


@pytest.mark.parametrize("managed", [False, True], ids=["unmanaged", "managed"])
async def test_a_worker_serves_only_the_queues_it_is_told(
    make_engine: EngineFactory, database_url: str, managed: bool
) -> None:
    async with Engine(database_url, worker=False, workflows=[a_task, b_task]) as client:
        if managed:
            await client.queues.configure("a", concurrency=4)
            await client.queues.configure("b", concurrency=4)
        on_b = await client.start(b_task, "b-run")
        a_on_b = await client.start(a_task, "a-workflow-on-b", queue="b")
        on_a = await client.start(a_task, "a-run")

        async with make_engine(a_task, b_task, queues=["a"], worker="manual") as a_worker:
            assert a_worker.settings.queues == ("a",)
            assert a_worker.worker is not None
            assert await a_worker.worker.claim_once() == 1
            assert await on_a.result(timeout=10) == "a-run"
            assert await a_worker.worker.claim_once() == 0  # the others are due, not its own
            assert await on_b.status() == RunStatus.PENDING
            assert await a_on_b.status() == RunStatus.PENDING
        assert [e["label"] for e in EXECUTIONS] == ["a-run"]

        async with make_engine(a_task, b_task, queues=["b"]):
            assert await on_b.result(timeout=10) == "b-run"
            assert await a_on_b.result(timeout=10) == "a-workflow-on-b"
    assert sorted(e["label"] for e in EXECUTIONS) == ["a-run", "a-workflow-on-b", "b-run"]
