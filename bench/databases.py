"""The Postgres server the benchmark runs on, and one fresh database per system on it.

``DURABLE_BENCH_DATABASE_URL`` (or ``--database-url``) names a server through any of its
databases; without it the embedded PostgreSQL of ``durable._store.embedded`` is started. Each
system gets its own database on that one server (``bench_durable``, ``bench_dbos``,
``bench_pgq``), created fresh at the start and dropped at the end, so no system sees the
other's tables, and every figure comes from the same server and disk.
``DURABLE_BENCH_DB_PREFIX`` replaces ``bench`` in those names, so two benchmark runs can
share one server without dropping each other's databases.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from durable._store.embedded import EmbeddedPostgres

__all__ = ["ENV_VAR", "Databases", "databases", "rss_bytes", "with_database"]

ENV_VAR = "DURABLE_BENCH_DATABASE_URL"
PREFIX_VAR = "DURABLE_BENCH_DB_PREFIX"
SYSTEMS = ("durable", "dbos", "pgq")


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (query string, e.g. a socket host, kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@dataclass(frozen=True)
class Databases:
    """The admin URL of the server and the URL of each system's fresh database."""

    admin: str
    durable: str
    dbos: str
    pgq: str
    server_version: str
    embedded: bool


async def _recreate(admin: str, names: list[str], *, create: bool) -> None:
    conn = await asyncpg.connect(admin)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _server_version(admin: str) -> str:
    conn = await asyncpg.connect(admin)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@asynccontextmanager
async def databases(url: str | None) -> AsyncIterator[Databases]:
    """Create ``bench_<system>`` databases on the server of ``url`` (or an embedded one),
    yield their URLs, and drop them afterwards."""
    url = url or os.environ.get(ENV_VAR) or None
    embedded = EmbeddedPostgres() if url is None else None
    admin = await embedded.start() if embedded is not None else url
    assert admin is not None
    prefix = os.environ.get(PREFIX_VAR) or "bench"
    names = [f"{prefix}_{system}" for system in SYSTEMS]
    try:
        await _recreate(admin, names, create=True)
        yield Databases(
            admin=admin,
            durable=with_database(admin, names[0]),
            dbos=with_database(admin, names[1]),
            pgq=with_database(admin, names[2]),
            server_version=await _server_version(admin),
            embedded=embedded is not None,
        )
    finally:
        try:
            await _recreate(admin, names, create=False)
        finally:
            if embedded is not None:
                await embedded.stop()


def rss_bytes() -> int:
    """This process's resident set size (VmRSS of /proc/self/status), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")
