"""The poison-run guard never counts runs that park and resume, and refuses a bad limit.
(The SIGKILL proof is ``tests/chaos/test_poison_runs.py``.)"""

from __future__ import annotations

import pytest

import durable
from durable import Engine, workflow
from durable.testing import Environment

pytestmark = pytest.mark.anyio


@workflow
async def naps() -> int:
    for _ in range(5):
        await durable.sleep("1h")
    return 5


async def test_runs_that_park_and_resume_never_count() -> None:
    async with Environment(workflows=[naps], max_run_attempts=1) as env:
        handle = await env.start(naps)
        await env.run_until_idle()
        assert await handle.result(timeout=5) == 5
        assert (await env.engine.get_run(handle.run_id)).attempt == 6


@pytest.mark.parametrize(
    ("bad", "error"), [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_a_bad_max_run_attempts_is_refused(bad: object, error: type) -> None:
    with pytest.raises(error, match="max_run_attempts"):
        Engine("postgresql://unused", max_run_attempts=bad)  # type: ignore[arg-type]
