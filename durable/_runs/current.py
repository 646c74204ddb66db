"""The clients entered in this process, so ``workflow.start(...)`` outside a run finds one
without importing the client that registers itself here."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

__all__ = ["RunStarter", "enter", "leave", "running_client"]


class RunStarter(Protocol):
    """What ``Workflow.start`` needs of a client: the one start path."""

    def _start_run(self, workflow: Any, /, *args: Any, **options: Any) -> Awaitable[Any]: ...


_entered: list[RunStarter] = []


def enter(client: RunStarter) -> None:
    """Register an entered client; the most recent one starts runs for ``workflow.start``."""
    _entered.append(client)


def leave(client: RunStarter) -> None:
    if client in _entered:
        _entered.remove(client)


def running_client() -> RunStarter:
    """The most recently entered client that is still open."""
    if not _entered:
        raise RuntimeError(
            "no durable Engine or Client is running: start runs inside "
            "`async with Engine() as engine:` (or `async with Client(...)`)"
        )
    return _entered[-1]
