"""Workflows by name: the default registry every ``@workflow`` joins, duplicates rejected."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durable._workflow.decorators import Workflow

__all__ = ["Registry", "default_registry"]


class Registry:
    """A set of workflows keyed by (name, version)."""

    def __init__(self, workflows: Iterable[Workflow[Any, Any]] = ()) -> None:
        self._by_key: dict[tuple[str, int], Workflow[Any, Any]] = {}
        for wf in workflows:
            self.add(wf)

    def add(self, wf: Workflow[Any, Any]) -> None:
        """Register ``wf``; a different function under the same (name, version) is an error."""
        key = (wf.name, wf.version)
        existing = self._by_key.get(key)
        if existing is not None and existing.fn is not wf.fn:
            if _same_definition(existing, wf):
                # The same source re-imported (e.g. a module run as __main__ and imported).
                self._by_key[key] = wf
                return
            raise ValueError(
                f"workflow {wf.name!r} version {wf.version} is already registered by "
                f"{existing.fn.__module__}.{existing.fn.__qualname__}; give one of them another "
                "name= or version="
            )
        self._by_key[key] = wf

    def get(self, name: str, version: int | None = None) -> Workflow[Any, Any] | None:
        """The workflow of that name and version (the newest version when None)."""
        if version is not None:
            return self._by_key.get((name, version))
        matches = [wf for (n, _), wf in self._by_key.items() if n == name]
        return max(matches, key=lambda wf: wf.version, default=None)

    def __iter__(self) -> Iterator[Workflow[Any, Any]]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)


def _same_definition(a: Workflow[Any, Any], b: Workflow[Any, Any]) -> bool:
    code_a, code_b = a.fn.__code__, b.fn.__code__
    return (code_a.co_filename, code_a.co_firstlineno) == (
        code_b.co_filename,
        code_b.co_firstlineno,
    )


default_registry = Registry()
