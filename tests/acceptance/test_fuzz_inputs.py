"""Property-based fuzzing of the public boundary with bad values (invariant 6).

For every generated value, ``engine.start``, ``engine.signal``, ``durable.set_event``,
``engine.list_runs`` and the command line either refuse it with one of the documented
errors (a ``DurableError``, ``ValueError`` or ``TypeError``, never a driver error,
``RecursionError`` or ``OverflowError``) or, for the CLI, exit 1 or 2 with a clean line;
and the rows of ``durable.runs``/``steps``/``signals``/``events`` stay as they were.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import anyio
import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durable
from durable import Engine, workflow
from durable.cli import main
from durable.errors import DurableError
from tests.acceptance import support

pytestmark = pytest.mark.anyio

COUNTS = """SELECT (SELECT count(*) FROM durable.runs), (SELECT count(*) FROM durable.steps),
    (SELECT count(*) FROM durable.signals), (SELECT count(*) FROM durable.events)"""

# -- bad values ----------------------------------------------------------------------------

surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
with_nul = st.text(max_size=8).map(lambda s: s + "\x00" + s)
with_surrogate = st.tuples(st.text(max_size=8), surrogate).map("".join)
too_long = st.integers(256, 20_000).map(lambda n: "x" * n)
huge_int = st.one_of(st.integers(min_value=2**31), st.integers(max_value=-(2**31) - 1),
                     st.just(10**400), st.just(-(10**400)))  # fmt: skip
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


deep = st.integers(10_000, 50_000).map(nested)  # far beyond any sane document
unencodable = st.sampled_from([object(), lambda: None, ...])
not_text = st.one_of(st.booleans(), st.integers(), st.floats(), st.binary(max_size=4),
                     st.lists(st.integers(), max_size=2), unencodable)  # fmt: skip
bad_text = st.one_of(with_nul, with_surrogate, too_long, not_text)
bad_payload = st.one_of(
    with_nul, with_surrogate, non_finite, deep, unencodable,
    st.dictionaries(with_nul, st.integers(), min_size=1, max_size=2),
    st.lists(non_finite, min_size=1, max_size=3),
)  # fmt: skip

BAD_START_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "idempotency_key": st.one_of(with_nul, with_surrogate, too_long, not_text),
    "concurrency_key": st.one_of(with_nul, with_surrogate, too_long, not_text),
    "queue": st.one_of(with_nul, with_surrogate, too_long, st.integers(), st.binary(min_size=1)),
    "run_id": st.one_of(st.text(max_size=40), bad_text.filter(lambda v: v is not None)),
    "priority": st.one_of(huge_int, st.text(max_size=5), st.floats(), st.booleans()),
    "tags": st.one_of(st.text(max_size=5), st.lists(bad_text, min_size=1, max_size=3),
                      st.integers(), st.lists(st.just("t"), min_size=65, max_size=70)),
    "delay": st.one_of(non_finite, st.floats(max_value=-0.001), st.just(timedelta.max),
                       st.just(timedelta(days=-1)), st.integers(10**10, 10**30),
                       st.sampled_from(["9999999999w", "soon", "-5s", "\x00"]),
                       st.lists(st.integers(), max_size=2)),
}  # fmt: skip
BAD_LIST_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "workflow": st.one_of(with_nul, with_surrogate, too_long),
    "tag": bad_text,
    "queue": bad_text,
    "status": st.one_of(st.text(min_size=1, max_size=10).filter(lambda s: s not in {
        "pending", "running", "sleeping", "waiting", "paused", "completed", "failed",
        "cancelled"}), st.integers()),
    "since": st.one_of(st.text(max_size=12), st.integers(), st.floats()),
    "until": st.one_of(st.text(max_size=12), st.integers(), st.floats()),
    "limit": st.one_of(st.integers(max_value=0), st.integers(min_value=1001), huge_int,
                       st.text(max_size=3), st.floats()),
    "cursor": st.one_of(bad_text, st.binary(max_size=60).map(
        lambda b: __import__("base64").urlsafe_b64encode(b).decode())),
    "parent": st.one_of(st.text(max_size=40), st.integers()),
}  # fmt: skip


# -- workflows -------------------------------------------------------------------------------

EVENT_CASES: dict[int, tuple[Any, Any]] = {}


@workflow(name="fuzz.echo")
async def echo(value: Any = None) -> Any:
    return value


@workflow(name="fuzz.waiter")
async def waiter() -> Any:
    return await durable.wait_for_signal("go")


@workflow(name="fuzz.publisher")
async def publisher(case: int) -> str:
    key, value = EVENT_CASES[case]
    try:
        await durable.set_event(key, value)
    except (DurableError, ValueError, TypeError) as exc:
        if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            return f"leaked {type(exc).__name__}"
        return "refused"
    except Exception as exc:
        return f"leaked {type(exc).__name__}"
    return "published"


WORKFLOWS = [echo, waiter, publisher]


# -- the contract -------------------------------------------------------------------------------


async def counts(engine: Engine) -> tuple[int, ...]:
    row = await engine.runtime.store.pool.fetchrow(COUNTS)
    assert row is not None
    return tuple(row)


async def assert_refused(engine: Engine, call: Any) -> None:
    """``call()`` raises a documented error and leaves every table as it was."""
    before = await counts(engine)
    with pytest.raises((DurableError, ValueError, TypeError)) as caught:
        await call()
    # asyncpg's DataError is a ValueError too, but no driver error may escape.
    assert not isinstance(caught.value, asyncpg.PostgresError | asyncpg.InterfaceError)
    assert await counts(engine) == before


def fuzz(strategy: st.SearchStrategy[Any], check: Any, max_examples: int = 60) -> Any:
    """Run ``check(value)`` for generated values. Hypothesis runs in a worker thread and
    sends each example to the test's event loop, where the engine lives."""

    # One failure, not an ExceptionGroup of several: a group escaping the test body ends
    # anyio's test runner and errors every later test.
    @settings(
        max_examples=max_examples, deadline=None, report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )  # fmt: skip
    @given(strategy)
    def property_(value: Any) -> None:
        anyio.from_thread.run(check, value)

    return anyio.to_thread.run_sync(property_)


def option(options: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[tuple[str, Any]]:
    """One (parameter, bad value) pair."""
    return st.sampled_from(sorted(options)).flatmap(
        lambda name: st.tuples(st.just(name), options[name])
    )


async def test_start_refuses_bad_options(engine: Engine) -> None:
    async def check(pair: tuple[str, Any]) -> None:
        name, value = pair
        await assert_refused(engine, lambda: engine.start(echo, 1, **{name: value}))

    await fuzz(option(BAD_START_OPTIONS), check)


@pytest.mark.parametrize("queue", [0, False, b"", ""])
async def test_start_refuses_a_falsy_queue_instead_of_using_the_default(
    engine: Engine, queue: Any
) -> None:
    # Found by the fuzz above: `queue=0` started the run on the workflow's own queue.
    await assert_refused(engine, lambda: engine.start(echo, 1, queue=queue))


async def test_start_refuses_bad_workflow_names(engine: Engine) -> None:
    async def check(name: Any) -> None:
        await assert_refused(engine, lambda: engine.start(name))

    await fuzz(bad_text, check)


async def test_start_refuses_bad_inputs(engine: Engine) -> None:
    async def check(value: Any) -> None:
        await assert_refused(engine, lambda: engine.start(echo, value))

    await fuzz(bad_payload, check)


async def test_signal_refuses_bad_names_keys_and_ids(engine: Engine) -> None:
    handle = await engine.start(waiter)
    await support.wait_for_status(handle, "waiting")  # its own rows are written by now
    bad = {"run_id": st.text(max_size=40), "name": bad_text, "idempotency_key": bad_text}

    async def check(pair: tuple[str, Any]) -> None:
        args: dict[str, Any] = {"run_id": handle.run_id, "name": "go", "idempotency_key": None}
        args[pair[0]] = pair[1]
        await assert_refused(
            engine, lambda: engine.signal(args["run_id"], args["name"], 1,
                                          idempotency_key=args["idempotency_key"]),
        )  # fmt: skip

    await fuzz(option(bad), check)


async def test_signal_refuses_bad_payloads(engine: Engine) -> None:
    handle = await engine.start(waiter)
    await support.wait_for_status(handle, "waiting")  # its own rows are written by now

    async def check(payload: Any) -> None:
        await assert_refused(engine, lambda: engine.signal(handle.run_id, "go", payload))

    await fuzz(bad_payload, check)


async def test_list_runs_refuses_bad_filters(engine: Engine) -> None:
    async def check(pair: tuple[str, Any]) -> None:
        await assert_refused(engine, lambda: engine.list_runs(**{pair[0]: pair[1]}))

    await fuzz(option(BAD_LIST_OPTIONS), check)


async def _publish(engine: Engine, key: Any, value: Any) -> None:
    case = len(EVENT_CASES)
    EVENT_CASES[case] = (key, value)
    events_before = (await counts(engine))[3]
    outcome = await (await engine.start(publisher, case)).result(timeout=60)
    assert outcome == "refused", (key, value, outcome)
    assert (await counts(engine))[3] == events_before


async def test_set_event_refuses_bad_keys(engine: Engine) -> None:
    async def check(key: Any) -> None:
        await _publish(engine, key, "ok")

    await fuzz(bad_text, check, max_examples=30)


async def test_set_event_refuses_bad_values(engine: Engine) -> None:
    async def check(value: Any) -> None:
        await _publish(engine, "progress", value)

    await fuzz(bad_payload, check, max_examples=30)


_RUN = str(uuid.uuid4())
cli_text = st.one_of(with_nul, with_surrogate, too_long, st.text(max_size=20))
json_text = st.one_of(
    st.integers(1, 3_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from(["NaN", "-Infinity", "1e999", '"\\u0000"', '"\\ud800"', "9" * 5000]),
    st.text(max_size=30),
)
cli_argv = st.one_of(
    st.tuples(st.sampled_from(["--since", "--until"]), st.one_of(cli_text, st.builds(
        lambda n, u: f"{n}{u}", st.integers(0, 10**30), st.sampled_from("smhdw")))).map(
        lambda a: ["runs", "list", *a]),
    st.tuples(st.sampled_from(["--limit", "--workflow", "--tag", "--queue", "--cursor",
                               "--parent"]), cli_text).map(lambda a: ["runs", "list", *a]),
    cli_text.map(lambda t: ["runs", "show", t]),
    cli_text.map(lambda t: ["runs", "cancel", t]),
    cli_text.map(lambda t: ["schedules", "pause", t]),
    st.tuples(cli_text, json_text).map(lambda a: ["runs", "signal", _RUN, *a]),
    cli_text.map(lambda t: ["runs", "fork", _RUN, "--from-step", t]),
)  # fmt: skip


async def test_cli_arguments_exit_cleanly(
    engine: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def check(argv: list[str]) -> None:
        before = await counts(engine)
        code = await anyio.to_thread.run_sync(main, [*argv, "--database-url", database_url])
        err = capsys.readouterr().err
        assert code in (0, 1, 2), (argv, code, err)  # some generated values are valid
        assert "Traceback" not in err
        assert "database error" not in err, argv  # the database is up: not its fault
        assert code == 0 or err.startswith("durable"), err
        assert await counts(engine) == before

    await fuzz(cli_argv, check, max_examples=80)
