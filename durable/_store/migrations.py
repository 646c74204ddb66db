"""Numbered ``.sql`` migrations, applied in order under an advisory lock.

Each file ``NNNN_name.sql`` under ``durable/sql/migrations`` runs once per database, in
the same transaction as its row in ``durable.schema_migrations``. Concurrent engines
starting at once serialize on the lock, so each migration applies exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from durable.sql import query

__all__ = ["Migration", "load_migrations", "migrate", "pending_migrations"]

# Arbitrary but fixed: the advisory lock key every durable engine agrees on.
_LOCK_KEY = 0x64757261626C65  # "durable"
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    folder = resources.files("durable") / "sql" / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found


async def _applied(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval(query("migrations_table_exists"))
    if not exists:
        return {}
    rows = await conn.fetch(query("migrations_applied"))
    return {r["version"]: r["checksum"] for r in rows}


async def pending_migrations(conn: asyncpg.Connection) -> list[Migration]:
    """Migrations not yet applied to the database behind ``conn`` (read-only)."""
    applied = await _applied(conn)
    return [m for m in load_migrations() if m.version not in applied]


def _refuse_newer(applied: dict[int, str]) -> None:
    """A database migrated by a newer durable has tables this code does not know how to
    keep consistent: refuse it rather than run against it."""
    known = {m.version for m in load_migrations()}
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        listed = ", ".join(f"{v:04d}" for v in unknown)
        raise RuntimeError(
            f"the database schema is newer than this version of durable: migration(s) "
            f"{listed} in durable.schema_migrations are unknown here (this code knows up to "
            f"{max(known):04d}); upgrade durable-sdk in this process, or use a database of "
            "this version"
        )


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending migration; return the versions applied (empty when up to date).

    Raises ``RuntimeError`` when an applied migration's file has changed since, or when the
    database has migrations this code does not know (a newer durable migrated it), because
    the database would no longer match the code.
    """
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute(query("migrations_lock"), _LOCK_KEY)
        await conn.execute(query("migrations_bootstrap"))
        applied = await _applied(conn)
        _refuse_newer(applied)
        for migration in load_migrations():
            recorded = applied.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; restore the original file and add a new migration"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                query("migrations_record"),
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.version)
    return applied_now
