"""The per-test database is migrated and isolated: what one test creates, the next never sees."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import dsn_for_database

pytestmark = pytest.mark.anyio

# Both tests create the same table; whichever runs second would fail on CREATE TABLE
# (and see the other's row) if the databases were shared.
_TABLE = "infra_isolation_probe"


async def _claim_fresh_database(db: asyncpg.Connection, marker: str) -> None:
    assert await db.fetchval("SELECT to_regclass($1)", f"public.{_TABLE}") is None
    await db.execute(f"CREATE TABLE {_TABLE} (marker text NOT NULL)")
    await db.execute(f"INSERT INTO {_TABLE} VALUES ($1)", marker)
    assert await db.fetchval(f"SELECT array_agg(marker) FROM {_TABLE}") == [marker]


async def test_database_is_migrated_and_fresh(db: asyncpg.Connection) -> None:
    applied = await db.fetchval("SELECT count(*) FROM durable.schema_migrations")
    assert applied >= 1
    await _claim_fresh_database(db, "first")


async def test_database_is_not_shared_with_other_tests(
    db: asyncpg.Connection, database_url: str, template_database: str
) -> None:
    await _claim_fresh_database(db, "second")
    name = await db.fetchval("SELECT current_database()")
    assert name != template_database
    assert database_url == dsn_for_database(database_url, name)
    # The template stays untouched by what tests do in their own databases.
    template = await asyncpg.connect(dsn_for_database(database_url, template_database))
    try:
        assert await template.fetchval("SELECT to_regclass($1)", f"public.{_TABLE}") is None
    finally:
        await template.close()
