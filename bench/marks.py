"""Timestamps the benchmark workloads leave behind, read by the scenarios.

Both systems' workloads write here, from whatever thread runs them (DBOS runs queued
workflows on its own event-loop thread); every stamp is ``time.perf_counter()``, which is
one monotonic clock for the whole process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["MARKS", "Marks", "now"]

now = time.perf_counter


@dataclass
class Marks:
    """Process-wide stamps; ``reset()`` before each measured run."""

    step_times: list[float] = field(default_factory=list)
    """perf_counter at the start of each timed step body, in call order."""
    body_entry: float | None = None
    """When the replay workflow's body started (its latest execution)."""
    replayed: float | None = None
    """When the replay workflow's 1,000th recorded call returned."""
    parked: int = 0
    """How many sleeper workflows reached their sleep."""
    child: bool = False
    """True in the replay child process: its blocking step then blocks forever."""

    def reset(self) -> None:
        self.step_times = []
        self.body_entry = None
        self.replayed = None
        self.parked = 0


MARKS = Marks()
