"""Bad arguments to the public API fail with ``TypeError``/``ValueError`` naming the
parameter, before any statement: no driver error, ``RecursionError`` or ``OverflowError``
escapes, and the database is as it was (invariant 6)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import durable
from durable import Engine, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

TABLES = ("runs", "steps", "signals", "events")


@workflow(name="validation.echo")
async def echo(value: Any = None) -> Any:
    return value


BAD_EVENT_KEYS: list[Any] = ["\x00", "k\ud800", "e" * 1000, 5, ""]


@workflow(name="validation.publisher")
async def publisher(which: int) -> str:
    try:
        await durable.set_event(BAD_EVENT_KEYS[which], "v")
    except (TypeError, ValueError) as exc:
        return f"refused: {type(exc).__name__}"
    return "published"


async def counts(database_url: str) -> dict[str, int]:
    return {
        t: await support.count_rows(database_url, f"SELECT count(*) FROM durable.{t}")
        for t in TABLES
    }


BAD_STARTS: list[tuple[str, dict[str, Any], str]] = [
    ("run_id", {"run_id": "x"}, "run_id"),
    ("run_id type", {"run_id": 12}, "run_id"),
    ("key type", {"idempotency_key": 123}, "idempotency_key"),
    ("key NUL", {"idempotency_key": "a\x00b"}, "idempotency_key"),
    ("key surrogate", {"idempotency_key": "a\ud800"}, "idempotency_key"),
    ("key too long", {"idempotency_key": "k" * 5000}, "idempotency_key"),
    ("priority str", {"priority": "high"}, "priority"),
    ("priority huge", {"priority": 2**40}, "priority"),
    ("priority bool", {"priority": True}, "priority"),
    ("queue type", {"queue": 123}, "queue"),
    ("queue NUL", {"queue": "q\x00"}, "queue"),
    ("queue long", {"queue": "q" * 300}, "queue"),
    ("tags str", {"tags": "abc"}, "tags"),
    ("tag type", {"tags": [1]}, "tag"),
    ("tag NUL", {"tags": ["a\x00"]}, "tag"),
    ("tag long", {"tags": ["t" * 3000]}, "tag"),
    ("too many tags", {"tags": [f"t{i}" for i in range(1000)]}, "tags"),
    ("delay max", {"delay": timedelta.max}, "delay"),
    ("delay negative", {"delay": -5}, "duration"),
    ("delay nan", {"delay": float("nan")}, "duration"),
    ("delay huge str", {"delay": "9999999999w"}, "delay"),
    ("concurrency key NUL", {"concurrency_key": "\x00"}, "concurrency_key"),
]


@pytest.mark.parametrize(("options", "named"), [b[1:] for b in BAD_STARTS],
                         ids=[b[0] for b in BAD_STARTS])  # fmt: skip
async def test_bad_start_options_are_refused_before_the_database(
    engine: Engine, database_url: str, options: dict[str, Any], named: str
) -> None:
    before = await counts(database_url)
    with pytest.raises((TypeError, ValueError)) as caught:
        await engine.start(echo, 1, **options)
    assert named in str(caught.value)
    assert await counts(database_url) == before


@pytest.mark.parametrize("name", ["a\x00b", "\ud800", "w" * 300, 42])
async def test_a_bad_workflow_name_is_refused(engine: Engine, name: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="workflow"):
        await engine.start(name)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("x", "go"), {}),
        ((uuid.uuid4(), "go\x00"), {}),
        ((uuid.uuid4(), "\udc00"), {}),
        ((uuid.uuid4(), 7), {}),
        ((uuid.uuid4(), "go"), {"idempotency_key": "\x00"}),
        ((uuid.uuid4(), "go"), {"idempotency_key": "k" * 4000}),
        ((uuid.uuid4(), "go"), {"idempotency_key": 5}),
    ],
)
async def test_bad_signal_arguments_are_refused(
    engine: Engine, database_url: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    before = await counts(database_url)
    with pytest.raises((TypeError, ValueError)):
        await engine.signal(*args, **kwargs)
    assert await counts(database_url) == before


def _cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_LISTS: list[tuple[str, dict[str, Any]]] = [
    ("since str", {"since": "2024-01-01"}),
    ("until int", {"until": 5}),
    ("since overflow", {"since": datetime.min.replace(tzinfo=timezone(timedelta(hours=14)))}),
    ("limit 0", {"limit": 0}),
    ("limit -1", {"limit": -1}),
    ("limit huge", {"limit": 10**9}),
    ("limit str", {"limit": "10"}),
    ("tag NUL", {"tag": "\x00"}),
    ("tag list", {"tag": ["a"]}),
    ("queue NUL", {"queue": "\x00"}),
    ("workflow NUL", {"workflow": "\x00"}),
    ("workflow long", {"workflow": "w" * 10_000}),
    ("cursor garbage", {"cursor": "!!!not a cursor"}),
    ("cursor int", {"cursor": 5}),
    ("cursor nested", {"cursor": _cursor_of(b"[" * 100_000 + b"]" * 100_000)}),
    ("cursor dict", {"cursor": _cursor_of(b'{"a": 1, "b": 2}')}),
    ("cursor long", {"cursor": "A" * 100_000}),
    ("cursor NUL", {"cursor": _cursor_of(b'["2024-01-01T00:00:00", "\\u0000"]')}),
    ("status", {"status": "bogus"}),
]


@pytest.mark.parametrize("options", [b[1] for b in BAD_LISTS], ids=[b[0] for b in BAD_LISTS])
async def test_bad_list_runs_arguments_are_refused(engine: Engine, options: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        await engine.list_runs(**options)


async def test_a_good_cursor_still_pages(engine: Engine) -> None:
    for n in range(3):
        await engine.start(echo, n)
    first = await engine.list_runs(limit=2, since=datetime.now(UTC) - timedelta(days=1))
    assert first.next_cursor is not None
    rest = await engine.list_runs(limit=2, cursor=first.next_cursor)
    assert len(first.items) + len(rest.items) == 3


@pytest.mark.parametrize("which", range(len(BAD_EVENT_KEYS)))
async def test_a_bad_event_key_is_refused_inside_the_workflow(
    make_engine: EngineFactory, database_url: str, which: int
) -> None:
    async with make_engine(publisher) as engine:
        handle = await engine.start(publisher, which)
        assert (await handle.result(timeout=30)).startswith("refused")
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.events") == 0


WORKFLOWS = [echo, publisher]
