"""Every self-contained example of the docs runs: a Python block whose first line is
``# example: <title>`` is compiled with top-level ``await`` and run in a fresh namespace.
Such examples bring their own ``durable.testing.Environment`` (on the test server, through
``DURABLE_TEST_DATABASE_URL``), so each page can show a verb next to the prose about it."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from durable._runs.registry import default_registry

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```python\n(# example: ([^\n]+)\n.*?)^```", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, str, str]]:
    """(page, title, source) of every example block, in page and document order."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for source, title in _BLOCK.findall(page.read_text("utf-8")):
            found.append((page.name, title.strip(), source))
    return found


@pytest.mark.parametrize(
    ("page", "title", "source"), examples(), ids=[f"{p}:{t}" for p, t, _ in examples()]
)
async def test_example_runs(
    page: str, title: str, source: str, server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_TEST_DATABASE_URL", server_dsn)
    # The example's workflows join the default registry; drop them afterwards so that a
    # name like "checkout" cannot clash with another test's.
    monkeypatch.setattr(default_registry, "_by_key", dict(default_registry._by_key))
    module = "docs_example_" + re.sub(r"\W+", "_", f"{page}_{title}")
    namespace: dict[str, Any] = {"__name__": module}
    code = compile(source, f"{page}: {title}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


def test_there_are_examples() -> None:
    assert examples()
