"""A database migrated by a newer durable (migrations this code does not know) is refused
when an engine starts, with a message that says what to do, and left as it was."""

from __future__ import annotations

import asyncpg
import pytest

from durable import Engine
from durable._store.migrations import load_migrations, migrate

pytestmark = pytest.mark.anyio


async def test_a_schema_newer_than_the_code_is_refused(
    db: asyncpg.Connection, database_url: str
) -> None:
    newest = max(m.version for m in load_migrations())
    await db.execute(
        "INSERT INTO durable.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        newest + 1, "from_the_future", "0" * 64,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match=f"{newest + 1:04d}.*upgrade durable-sdk"):
        await migrate(db)
    with pytest.raises(RuntimeError, match="schema is newer than this version of durable"):
        async with Engine(database_url, worker=False):
            pass
    versions = await db.fetchval("SELECT max(version) FROM durable.schema_migrations")
    assert versions == newest + 1
