"""The hooks scenario: what lifecycle hooks add to the step latency."""

from __future__ import annotations

from bench.agents import Harness
from bench.harness import Measure
from bench.report import Figure
from bench.runs_hooks import HOOKS

__all__ = ["hooks"]


async def hooks(h: Harness) -> list[Figure]:
    """**hooks overhead** (durable only): the step-latency workload (200 sequential runs per
    rep of a 10-step no-op workflow) with no hook, then with 8 no-op hooks registered
    on the engine for every event (22 events per run: run started and completed, step
    started and completed ten times), async hooks or sync ones (run in a worker thread).
    Hooks are called off the run's path by one task draining a bounded queue; the rows
    show what that costs the runs, which share the process and its event loop with it."""
    measures = [Measure("workflow", "10-step workflow"), Measure("step", "one step")]
    systems = {
        "durable": "step",
        f"durable +{HOOKS} async hooks": "step_async_hooks",
        f"durable +{HOOKS} sync hooks": "step_sync_hooks",
    }
    return await h.alternate("hooks overhead", measures, systems)
