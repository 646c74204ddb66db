"""Every statement in ``durable/sql/queries.sql`` is valid SQL for the migrated schema, and
the code uses each one: no statement is dead, no reference points at a missing one."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

import durable
from durable.sql import load_queries

# Multi-statement scripts cannot be prepared; they are executed instead.
_SCRIPTS = {"migrations_bootstrap", "step_event_triggers"}
_PACKAGE = Path(durable.__file__).parent
_REFERENCE = re.compile(r"""\bquery\(\s*["'](\w+)["']\s*\)""")


def _references() -> dict[str, list[str]]:
    """Statement name -> the source files under durable/ that call ``query("name")``."""
    found: dict[str, list[str]] = {}
    for path in sorted(_PACKAGE.rglob("*.py")):
        for name in _REFERENCE.findall(path.read_text("utf-8")):
            found.setdefault(name, []).append(str(path.relative_to(_PACKAGE.parent)))
    return found


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(load_queries()))
async def test_statement_is_valid_on_the_migrated_schema(db: asyncpg.Connection, name: str) -> None:
    sql = load_queries()[name]
    assert sql, f"queries.sql has an empty statement under -- name: {name}"
    try:
        if name in _SCRIPTS:
            async with db.transaction():
                await db.execute(sql)
        else:
            await db.prepare(sql)
    except asyncpg.PostgresError as exc:
        pytest.fail(
            f"statement {name!r} does not {'run' if name in _SCRIPTS else 'prepare'}: "
            f"{type(exc).__name__}: {exc}\n{sql}"
        )


def test_only_scripts_hold_several_statements() -> None:
    # A stray ";" inside a statement other than the scripts would make asyncpg refuse to
    # prepare it; catching it here names the statement.
    for name, sql in load_queries().items():
        if name not in _SCRIPTS:
            assert ";" not in sql.replace("';'", ""), f"{name} holds more than one statement"


def test_every_statement_is_used() -> None:
    unused = sorted(set(load_queries()) - set(_references()))
    assert not unused, f"queries.sql names statements no code under durable/ uses: {unused}"


def test_every_reference_names_a_statement() -> None:
    missing = {n: files for n, files in _references().items() if n not in load_queries()}
    assert not missing, f"code under durable/ asks for statements queries.sql lacks: {missing}"
