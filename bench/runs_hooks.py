"""durable with lifecycle hooks registered: the step-latency workload of ``runs_durable``
with N no-op hooks on every event, so the hooks scenario compares like with like."""

from __future__ import annotations

import itertools
from typing import Any

from bench import work_durable as W
from bench.harness import Bench, RepOut, Runner
from bench.marks import MARKS, now
from bench.runs_durable import TIMEOUT, fresh
from durable import Engine, HookEvent, Hooks

__all__ = ["HOOKS", "RUNNERS"]

HOOKS = 8
"""No-op hooks registered, each receiving every run and step event."""


def no_op_hooks(kind: str) -> Hooks:
    hooks = Hooks()
    for _ in range(HOOKS):
        if kind == "async":

            async def on_event(event: HookEvent) -> None:
                return None

            hooks.add(HookEvent, on_event)
        else:
            hooks.add(HookEvent, lambda event: None)
    return hooks


async def _step(bench: Bench, rep: int, hooks: Hooks) -> RepOut:
    await fresh(bench, rep)
    per_wf: list[float] = []
    per_step: list[float] = []
    options: dict[str, Any] = {"workflows": [W.steps], "hooks": hooks}
    async with Engine(bench.durable_url, **options) as engine:
        for _ in range(5):  # warm-up
            await (await engine.start(W.steps, 10)).result(timeout=TIMEOUT)
        for _ in range(bench.n("step")):
            MARKS.reset()
            t0 = now()
            await (await engine.start(W.steps, 10)).result(timeout=TIMEOUT)
            per_wf.append(now() - t0)
            per_step.extend(b - a for a, b in itertools.pairwise(MARKS.step_times))
        dropped = engine.runtime.hooks.dropped
    return RepOut({"workflow": per_wf, "step": per_step}, {"step": f"{dropped} events dropped"})


async def step_async_hooks(bench: Bench, rep: int) -> RepOut:
    return await _step(bench, rep, no_op_hooks("async"))


async def step_sync_hooks(bench: Bench, rep: int) -> RepOut:
    return await _step(bench, rep, no_op_hooks("sync"))


RUNNERS: dict[str, Runner] = {
    "step_async_hooks": step_async_hooks,
    "step_sync_hooks": step_sync_hooks,
}
