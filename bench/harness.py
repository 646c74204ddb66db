"""What every scenario shares: the run's settings and sizes, and what one rep returns.

``Bench`` is plain data (it is handed to each agent process as JSON); ``Measure`` says how
the parent turns samples into figures; ``RepOut`` is what one rep of one system returns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio

from bench.report import Kind

__all__ = ["SIZES", "Bench", "Measure", "RepOut", "Runner", "log", "wait_until"]

SIZES: dict[str, tuple[int, int]] = {
    "floor": (1000, 300),  # commits per rep
    "step": (200, 50),  # 10-step workflows per rep
    "batch": (1000, 300),  # workflows per throughput / drain sample
    "pickup": (30, 6),  # lone starts in all (split over the reps)
    "replay": (1000, 300),  # recorded steps
    "parked": (10_000, 1_000),  # sleeping runs
    "finished": (100_000, 10_000),  # finished runs beside them
    "pgqueuer": (5000, 1000),  # plain jobs per sample
    "prune": (1_000_000, 20_000),  # finished runs pruned (--prune-runs)
}
"""name -> (full run, --quick run)."""


@dataclass(frozen=True)
class Bench:
    """The run's settings, the same in the parent and in every agent."""

    durable_url: str
    dbos_url: str
    pgq_url: str
    reps: int
    quick: bool
    prune_runs: int | None = None
    """``--prune-runs``: the size of the prune scenario, whatever ``quick`` says."""

    def n(self, name: str) -> int:
        if name == "prune" and self.prune_runs:
            return self.prune_runs
        full, quick = SIZES[name]
        return quick if self.quick else full

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Bench:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Measure:
    """How to turn one measure's samples into figures."""

    key: str
    """The key the runners return this measure's samples under."""
    name: str
    kind: Kind = "time"
    per: int = 1
    notes: dict[str, str] = field(default_factory=dict)
    """system -> note shown in the table."""


@dataclass
class RepOut:
    """One rep of one system: samples per measure key, and optional notes per key."""

    samples: dict[str, list[float]]
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Runner = Callable[[Bench, int], Any]
"""``async (bench, rep) -> RepOut``: one rep of one scenario on one system."""


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


async def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.0005
) -> None:
    """Poll ``predicate`` (cheap, in-process; it may be set from another thread, so no
    Event) until it holds; TimeoutError after ``timeout``."""
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(interval)
