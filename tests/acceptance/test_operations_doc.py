"""Every example of ``docs/operations.md`` runs: the app module is written to a temporary
package, the other Python blocks run in order inside ``async with engine:`` (top-level
``await`` allowed), and every ``$ durable ...`` line runs in a shell against the same
database. A command may fail as an operation (exit 1: e.g. retrying a run that did not
fail) but never as a usage error (exit 2); the worker line serves until SIGTERM."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.anyio

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def ordered_blocks(doc: Path = DOC) -> list[tuple[str, str]]:
    """Every fenced block of ``doc`` as (language, body), in document order."""
    return _BLOCK.findall(doc.read_text("utf-8"))


def blocks(kind: str, doc: Path = DOC) -> list[str]:
    return [body for lang, body in ordered_blocks(doc) if lang == kind]


def commands(doc: Path = DOC) -> list[str]:
    lines = [line for block in blocks("console", doc) for line in block.splitlines()]
    return [line[2:] for line in lines if line.startswith("$ ")]


@pytest.fixture
def app_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, server_dsn: str
) -> Iterator[Path]:
    """``myapp/workflows.py`` from the doc's first block, importable, on this test's DB."""
    module = blocks("python")[0]
    assert module.startswith("# myapp/workflows.py")
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "workflows.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DURABLE_DATABASE_URL", database_url)
    monkeypatch.setenv("DURABLE_TEST_DATABASE_URL", server_dsn)
    yield tmp_path
    for name in ("myapp.workflows", "myapp"):
        sys.modules.pop(name, None)


async def run_python_blocks(namespace: dict[str, Any]) -> None:
    for index, source in enumerate(blocks("python")[1:], start=2):
        code = compile(
            source, f"{DOC.name} block {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result


def shell(line: str, cwd: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, RUN_ID=run_id, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    )
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


async def serve_briefly(line: str, cwd: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    process = await anyio.open_process(shlex.split(line), cwd=cwd, env=env)
    try:
        assert process.stdout is not None
        banner = b""
        with anyio.fail_after(30):
            while b"serving" not in banner:
                banner += await process.stdout.receive()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(40):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


async def test_every_example_runs(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module("myapp.workflows")
    namespace = dict(vars(module))
    async with module.engine:
        await run_python_blocks(namespace)
    printed = capsys.readouterr().out
    assert "invalid cron expression '0 25 * * *'" in printed
    assert "\nTrue\n" in printed  # the fork links its source
    run_id = str(namespace["handle"].run_id)

    for line in commands():
        if line.startswith("durable worker"):
            await serve_briefly(line, app_dir)
            continue
        result = await anyio.to_thread.run_sync(shell, line, app_dir, run_id)
        assert result.returncode in (0, 1), f"{line}\n{result.stderr}"
        assert result.returncode == 0 or result.stderr.startswith("durable: "), result.stderr


def test_the_doc_has_examples_of_every_command() -> None:
    lines = " ".join(commands())
    for command in ("worker", "migrate --dry-run", "runs list", "runs show", "runs retry",
                    "runs fork", "runs signal", "runs cancel", "schedules list",
                    "schedules pause", "schedules resume", "schedules trigger"):  # fmt: skip
        assert f"durable {command}" in lines
