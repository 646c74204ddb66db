"""One redaction for every libpq connection-string form (``durable._foundation.dsn``)."""

from __future__ import annotations

import asyncpg
import pytest

from durable._foundation.dsn import redact, scrub

SECRET = "hunter2secret"

# (connection string, a part that must stay readable)
FORMS = [
    (f"postgresql://user:{SECRET}@db.example:5432/app", "db.example:5432/app"),
    (f"postgres://user:{SECRET}@db.example/app", "db.example/app"),
    (f"postgresql://:{SECRET}@db.example/app", "db.example/app"),
    (f"postgresql://user:{SECRET}@/app?host=/var/run/postgresql", "/var/run/postgresql"),
    (f"postgresql://user@db.example/app?password={SECRET}", "db.example/app"),
    (f"postgresql://user@db.example/app?sslmode=require&password={SECRET}&x=1", "sslmode"),
    (f"postgresql://user@db.example/app?PassWord={SECRET}", "db.example/app"),
    (f"postgresql://user@db.example/app?sslpassword={SECRET}", "db.example/app"),
    (f"postgresql:///app?host=/tmp&password={SECRET}", "host=/tmp"),
    (f"postgresql://user:{SECRET}@h1:5432,h2:5433/app?target_session_attrs=any", "h1:5432,h2"),
    (f"postgresql://user:{SECRET}@[::1]:5432/app", "[::1]:5432"),
    (f"postgresql://user:pa%40{SECRET}@db.example/app", "db.example/app"),
    (f"postgresql://user:pa@{SECRET}@db.example/app", "db.example/app"),
    (f"postgresql://user:pa/{SECRET}@db.example/app", "db.example/app"),
    (f"postgresql://user:pa?{SECRET}@db.example/app", "postgresql://"),
    (f"postgresql://user:pa#{SECRET}@db.example/app", "postgresql://"),
    (f"postgresql://user:{SECRET}@db.example/app#frag", "db.example/app"),
    (f"host=db.example port=5432 user=u password={SECRET} dbname=app", "host=db.example"),
    (f"host=db.example password = '{SECRET} x\\' y' dbname=app", "dbname=app"),
    (f"PASSWORD={SECRET} host=db.example", "host=db.example"),
    (f"  postgresql://user:{SECRET}@db.example/app  ", "db.example/app"),
]


@pytest.mark.parametrize(("dsn", "kept"), FORMS)
def test_redact_hides_the_password_of_every_form(dsn: str, kept: str) -> None:
    masked = redact(dsn)
    assert SECRET not in masked
    assert "***" in masked
    assert kept in masked


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://user@db.example:5432/app",
        "postgresql:///app?host=/var/run/postgresql",
        "host=db.example dbname=app",
        "postgresql://user@db.example/app?application_name=a@b",
    ],
)
def test_redact_leaves_a_string_without_password_alone(dsn: str) -> None:
    assert redact(dsn) == dsn


@pytest.mark.parametrize(("dsn", "kept"), FORMS)
def test_scrub_hides_the_password_inside_free_text(dsn: str, kept: str) -> None:
    text = f"could not connect to {dsn.strip()}: refused (tried {SECRET})"
    assert SECRET not in scrub(text, dsn)
    # Without being told the DSN, URLs and password= pairs in the text are still masked.
    assert SECRET not in scrub(f"could not connect to {dsn.strip()}").replace(kept, "")


@pytest.mark.parametrize(("dsn", "kept"), FORMS)
@pytest.mark.anyio
async def test_driver_errors_scrubbed_never_show_the_password(dsn: str, kept: str) -> None:
    # Point every form at a closed port: the driver's own message may quote URL pieces.
    target = dsn.replace("db.example:5432", "127.0.0.1:1").replace("db.example", "127.0.0.1:1")
    try:
        conn = await asyncpg.connect(target, timeout=5)
    except Exception as exc:
        message = scrub(f"{type(exc).__name__}: {exc}", target)
    else:  # pragma: no cover - nothing listens on port 1
        await conn.close()
        return
    for piece in (SECRET, "hunter2"):
        assert piece not in message
