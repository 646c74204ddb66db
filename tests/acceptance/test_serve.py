"""``serve``: the loop of a dedicated worker process (``durable worker``, ``run_workers``)."""

from __future__ import annotations

import gc
import os
import signal

import pytest

from durable import Engine, workflow
from durable._run_workers import serve
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@workflow(name="tests.serve.noop")
async def noop() -> None:
    return None


async def test_a_served_worker_freezes_its_startup_heap_out_of_the_collector(
    make_engine: EngineFactory,
) -> None:
    """Everything alive once the worker serves (the app's modules, the engine) is moved
    to the collector's permanent generation: full collections under load then scan only
    what runs create, not the whole startup heap again and again."""
    frozen: list[int] = []

    def announce(engine: Engine) -> None:
        frozen.append(gc.get_freeze_count())
        os.kill(os.getpid(), signal.SIGTERM)  # serve's own way out: drain and return

    gc.unfreeze()
    try:
        await serve(make_engine(noop), announce)
    finally:
        gc.unfreeze()
    assert len(frozen) == 1
    assert frozen[0] > 10_000
