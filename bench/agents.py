"""The parent's side: agent processes, and ``alternate``, which every scenario calls.

``alternate`` runs each system's rep in turn (durable, dbos, durable, dbos, ...) so both
see the same server at the same time, and builds one figure per measure and system. A
system whose rep fails or times out is reported as n/a with the reason and is not run
again in that scenario (a timed-out agent is killed and started afresh when next needed).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bench import runs_plain
from bench.harness import Bench, Measure, RepOut, log
from bench.report import Figure

__all__ = ["Agent", "Harness", "RepFailed"]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0
REP_TIMEOUT = 300.0
AGENT_SYSTEMS = ("durable", "dbos")


class RepFailed(Exception):
    """A rep raised in its agent; the message is the agent's ``Type: message``."""


class Agent:
    """One ``python -m bench.agent`` process, started on first use."""

    def __init__(self, system: str, bench: Bench) -> None:
        self.system = system
        self.bench = bench
        self.proc: asyncio.subprocess.Process | None = None

    async def _start(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.agent", self.system, self.bench.to_json(),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.proc = proc
        await self._read(START_TIMEOUT)
        return proc

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdout is not None
        with anyio.fail_after(timeout):
            line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.system} agent exited (see its stderr above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def run(self, scenario: str, rep: int) -> RepOut:
        proc = self.proc or await self._start()
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({"scenario": scenario, "rep": rep}) + "\n").encode())
        await proc.stdin.drain()
        try:
            answer = await self._read(REP_TIMEOUT)
        except BaseException:
            await self.kill()
            raise
        if not answer["ok"]:
            raise RepFailed(answer["error"])
        return RepOut(samples=answer["samples"], notes=answer["notes"])

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.write(b'{"exit": true}\n')
        await proc.stdin.drain()
        with anyio.move_on_after(30):
            await proc.wait()
            return
        proc.kill()
        await proc.wait()


@dataclass
class Harness:
    """The parent's state: settings, agents, and the floor once measured."""

    bench: Bench
    agents: dict[str, Agent] = field(default_factory=dict)
    commit: float | None = None
    """Median seconds of one raw single-row INSERT commit (set by the floor scenario)."""

    def __post_init__(self) -> None:
        self.agents = {system: Agent(system, self.bench) for system in AGENT_SYSTEMS}

    async def close(self) -> None:
        for agent in self.agents.values():
            await agent.close()

    async def _rep(self, system: str, runner: str, rep: int) -> RepOut:
        agent = self.agents.get(system.split(maxsplit=1)[0])
        if agent is not None:
            return await agent.run(runner, rep)
        out: RepOut = await runs_plain.RUNNERS[runner](self.bench, rep)
        return out

    async def alternate(
        self,
        scenario: str,
        measures: Sequence[Measure],
        systems: dict[str, str],
        reps: int | None = None,
    ) -> list[Figure]:
        """Run ``systems`` (label -> runner name; a label's first word picks the agent,
        other labels run here) in turn, ``reps`` times, and build the figures."""
        reps = self.bench.reps if reps is None else reps
        samples: dict[tuple[str, str], list[float]] = {}
        notes: dict[tuple[str, str], str] = {}
        errors: dict[str, str] = {}
        for rep in range(reps):
            for system, runner in systems.items():
                if system in errors:
                    continue
                log(f"{scenario}: {system} rep {rep + 1}/{reps}")
                try:
                    out = await self._rep(system, runner, rep)
                except Exception as exc:
                    text = (
                        str(exc) if isinstance(exc, RepFailed) else f"{type(exc).__name__}: {exc}"
                    )
                    errors[system] = text[:150]
                    log(f"{scenario}: {system} failed: {errors[system]}")
                    continue
                for measure, values in out.samples.items():
                    samples.setdefault((measure, system), []).extend(values)
                for measure, note in out.notes.items():
                    notes[(measure, system)] = note
        return [
            Figure(
                scenario=scenario,
                measure=m.name,
                system=system,
                samples=samples.get((m.key, system), []),
                kind=m.kind,
                per=m.per,
                note=notes.get((m.key, system), m.notes.get(system, "")),
                error=errors.get(system),
            )
            for m in measures
            for system in systems
        ]
