"""The worker the replay scenario kills: ``python -m bench.replay_child SYSTEM URL N``.

Starts one replay workflow of ``N`` no-op steps on SYSTEM (``durable`` or ``dbos``) and
runs it in this process. After the ``N`` steps are recorded, the workflow's blocking step
prints ``ready <run id>`` and blocks; ``killed_child`` then kills the process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import anyio

from bench.marks import MARKS

READY_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parent.parent


async def killed_child(system: str, url: str, n: int) -> str:
    """Run this module until its run has ``n`` recorded steps, SIGKILL it, and return the
    run id it printed."""
    with tempfile.TemporaryFile() as errors:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.replay_child", system, url, str(n),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            with anyio.fail_after(READY_TIMEOUT):
                while True:
                    line = (await proc.stdout.readline()).decode()
                    if line.startswith("ready "):
                        return line.split()[1]
                    if not line:
                        errors.seek(0)
                        tail = errors.read().decode(errors="replace")[-800:]
                        raise RuntimeError(f"replay child exited early: {tail}")
        finally:
            if proc.returncode is None:
                proc.kill()  # SIGKILL: no shutdown, no lease hand-back
            await proc.wait()


async def _durable(url: str, n: int) -> None:
    from bench import work_durable as W
    from durable import Engine

    async with Engine(url, workflows=[W.replay]) as engine:
        await engine.start(W.replay, n)
        await asyncio.Event().wait()


async def _dbos(url: str, n: int) -> None:
    from dbos import DBOS

    from bench import work_dbos as X

    await X.launch(url, executor_id=f"bench-replay-child-{os.getpid()}", queues=False)
    await DBOS.start_workflow_async(X.replay, n)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    system, url, n = argv[0], argv[1], int(argv[2])
    MARKS.child = True
    asyncio.run(_durable(url, n) if system == "durable" else _dbos(url, n))


if __name__ == "__main__":
    main(sys.argv[1:])
