"""Child runs started from inside a workflow (cursor-keyed, started exactly once)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from durable._context import RunContext

if TYPE_CHECKING:
    from durable._decorators import Workflow

__all__ = ["run_child"]


def run_child(
    ctx: RunContext,
    workflow: Workflow[Any, Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    wait: bool,
) -> Any:
    """Take the child's cursor key now; start (once) and, with ``wait``, await its result."""
    raise NotImplementedError("child runs land with the durable-waits work")
