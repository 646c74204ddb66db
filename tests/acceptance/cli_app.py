"""A tiny app for ``durable worker --app tests.acceptance.cli_app:...`` in the CLI tests."""

from __future__ import annotations

from durable import Engine, workflow


@workflow(name="tests.cli_app.double")
async def double(x: int) -> int:
    return 2 * x


WORKFLOWS = [double]

engine = Engine(workflows=WORKFLOWS, poll_interval=0.1, shutdown_grace_seconds=1.0)
"""An app that configures its own Engine; ``--database-url`` and ``--concurrency`` win."""

client = Engine(workflows=WORKFLOWS, worker=False, poll_interval=0.1, shutdown_grace_seconds=1.0)
"""The same app built as a client (the web process's engine): ``durable worker`` serves it."""

not_an_app = 42
