"""The text of every statement durable runs, loaded once from ``queries.sql`` by name."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["load_queries", "query"]

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries() -> dict[str, str]:
    """Map each ``-- name:`` in queries.sql to its statement (comments stripped)."""
    text = (resources.files(__package__) / "queries.sql").read_text("utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise RuntimeError(f"queries.sql names {name!r} twice")
        lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def query(name: str) -> str:
    """The statement named ``name``; KeyError names the missing statement."""
    return load_queries()[name]
