"""An agent process: ``python -m bench.agent SYSTEM BENCH_JSON`` runs one system's reps.

Each system runs in its own long-lived process, so neither sees the other's threads (DBOS
keeps several polling threads that would otherwise take the GIL from durable's event
loop), and each process's memory is its own. The parent sends one JSON command per line
on stdin (``{"scenario": NAME, "rep": N}`` or ``{"exit": true}``) and reads one JSON
answer per line (``{"ok": true, "samples": ..., "notes": ...}`` or ``{"ok": false,
"error": ...}``) from the agent's stdout; anything else the process prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO, Any

import anyio
import anyio.to_thread

from bench.harness import Bench, Runner


def _runners(system: str) -> dict[str, Runner]:
    if system == "durable":
        from bench import runs_durable, runs_hooks

        return {**runs_durable.RUNNERS, **runs_hooks.RUNNERS}
    from bench import runs_dbos

    return runs_dbos.RUNNERS


def _protocol_channel() -> IO[str]:
    """Keep the real stdout for answers; send every other print to stderr."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _answer(channel: IO[str], data: dict[str, Any]) -> None:
    channel.write(json.dumps(data) + "\n")
    channel.flush()


async def serve(system: str, bench: Bench) -> None:
    channel = _protocol_channel()
    runners = _runners(system)
    broken: str | None = None
    if system == "dbos":
        from bench import work_dbos

        try:
            await work_dbos.launch(bench.dbos_url)
        except Exception as exc:
            traceback.print_exc()
            broken = f"DBOS did not launch: {type(exc).__name__}: {exc}"
    _answer(channel, {"ready": True})
    try:
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            command: dict[str, Any] = json.loads(line) if line.strip() else {"exit": True}
            if command.get("exit"):
                return
            if broken is not None:
                _answer(channel, {"ok": False, "error": broken})
                continue
            try:
                out = await runners[command["scenario"]](bench, command["rep"])
            except Exception as exc:
                traceback.print_exc()
                _answer(channel, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                continue
            _answer(channel, {"ok": True, **out.to_json()})
    finally:
        if system == "dbos" and broken is None:
            from bench import work_dbos

            await work_dbos.shutdown()


def main(argv: list[str]) -> None:
    anyio.run(serve, argv[0], Bench.from_json(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
