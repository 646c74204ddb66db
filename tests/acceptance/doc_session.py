"""Runs one docs page's code blocks in order, as a reader following the page would.

The page gets its own project directory (the working directory, on ``sys.path`` and
``PYTHONPATH``) and its own database: ``DURABLE_DATABASE_URL`` points at it, so
``Engine()`` as the page writes it lands there, and ``DURABLE_TEST_DATABASE_URL`` at the
test server, for ``durable.testing.Environment``. What each kind of block does is
described in ``doc_blocks``; an engine found as ``engine`` in the app's module is entered
for the rest of the page, as an app would hold it open. A console line runs in a shell in
the project directory (or, when it needs no shell, in this process: see ``run_command``)
with ``$RUN_ID`` set to the last ``handle`` the page made; it may
fail as an operation (exit 1, ``durable: ...``) but never as a usage error, and where the
page shows a ``N run(s) replayed: ...`` summary the real output has it and the exit status
agrees. ``durable worker`` serves until it prints its banner, then stops on SIGTERM.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from durable import Engine, cli
from durable._runs.registry import default_registry
from tests.acceptance.doc_blocks import Block, Kind, console_commands

_SHELL_SYNTAX = re.compile(r"[<>|;&`]|\$(?!RUN_ID\b)")
SUMMARY = re.compile(r"^\d+ run\(s\) replayed: \d+ ok, (\d+) incompatible$", re.MULTILINE)


class PageSession:
    """The state a page builds up: its namespace, project files, entered engines."""

    def __init__(self, page: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.page = page
        self.project = project
        self.capsys = capsys
        self.namespace: dict[str, Any] = {"__name__": _module_name(page)}
        self.engines: list[Engine] = []
        self.imported: list[str] = []
        self.printed = ""
        self.all_printed = ""  # everything the page printed, for checks on the whole page
        self.pending_test: Block | None = None

    async def run(self, blocks: list[Block]) -> None:
        for block in blocks:
            if block.kind is Kind.OUTPUT:
                assert block.body.strip() in self.printed, f"{block.where}: not printed"
                continue
            if block.kind in (Kind.DATA, Kind.SKIPPED):
                continue
            await self._run_pending_test(unless_continued_by=block)
            self.capsys.readouterr()
            await self.run_block(block)
            self.printed = self.capsys.readouterr().out
            self.all_printed += self.printed
            sys.stdout.write(self.printed)  # shown by pytest if the next block fails

    async def run_block(self, block: Block) -> None:
        if block.kind is Kind.EXAMPLE:
            await self._isolated(block)
        elif block.kind is Kind.SESSION:
            await execute(block, self.namespace)
        elif block.kind is Kind.PROGRAM:
            await self._program(block)
        elif block.kind is Kind.MODULE:
            await self._module(block)
        elif block.kind is Kind.TEST_FILE:
            self._write(block)
            self.pending_test = block  # pytest runs it once the page moves past the file
        elif block.kind is Kind.CONSOLE:
            await self._console(block)

    async def finish(self) -> None:
        """Run what the page left pending (a test file it ended with)."""
        await self._run_pending_test(unless_continued_by=None)

    async def _run_pending_test(self, unless_continued_by: Block | None) -> None:
        pending, following = self.pending_test, unless_continued_by
        if pending is None:
            return
        if following is not None and following.continued and following.path == pending.path:
            return
        self.pending_test = None
        await anyio.to_thread.run_sync(self._pytest, pending)

    async def close(self) -> None:
        for engine in reversed(self.engines):
            await engine.__aexit__(None, None, None)
        for name in self.imported:
            sys.modules.pop(name, None)

    async def _isolated(self, block: Block) -> None:
        saved = dict(default_registry._by_key)
        title = block.body.split("\n", 1)[0].removeprefix("# example: ")
        try:
            await execute(block, {"__name__": _module_name(f"{block.page}_{title}")})
        finally:
            default_registry._by_key = saved

    async def _program(self, block: Block) -> None:
        # A complete program calls asyncio.run(), which needs a thread without a running
        # loop; its names stay in the page's namespace for the blocks after it.
        self.namespace["__name__"] = "__main__"
        try:
            code = compile(block.body, block.where, "exec", dont_inherit=True)
            await anyio.to_thread.run_sync(exec, code, self.namespace)
        finally:
            self.namespace["__name__"] = _module_name(self.page)

    async def _module(self, block: Block) -> None:
        first_time = not (self.project / block.path_or_fail).exists()
        self._write(block)
        if not first_time:
            return  # a later version is for the processes the page starts (CLI, pytest)
        name = block.path_or_fail.removesuffix(".py").replace("/", ".")
        module = importlib.import_module(name)
        self.imported[:0] = [name, name.rsplit(".", 1)[0]]
        self.namespace.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        engine = getattr(module, "engine", None)
        if isinstance(engine, Engine):
            self.engines.append(await engine.__aenter__())

    def _write(self, block: Block) -> None:
        path = self.project / block.path_or_fail
        for parent in reversed(path.relative_to(self.project).parents[:-1]):
            package = self.project / parent
            package.mkdir(exist_ok=True)
            if block.kind is Kind.MODULE:
                (package / "__init__.py").touch()
        if block.continued:
            assert path.exists(), f"{block.where}: continues {block.path} before it exists"
            with path.open("a") as file:
                file.write("\n\n" + block.body)
        else:
            path.write_text(block.body)

    def _pytest(self, block: Block) -> None:
        line = f"{sys.executable} -m pytest -q -p no:cacheprovider {block.path}"
        result = shell(line, self.project, "")
        assert result.returncode == 0, f"{block.where}\n{result.stdout}{result.stderr}"

    async def _console(self, block: Block) -> None:
        handle = self.namespace.get("handle")
        run_id = str(handle.run_id) if handle is not None else ""
        for line, shown in console_commands(block.body):
            if line.startswith("durable worker"):
                await serve_briefly(line, self.project)
                continue
            result = await anyio.to_thread.run_sync(run_command, line, self.project, run_id)
            check_command(block, line, shown, result)


def check_command(
    block: Block, line: str, shown: str, result: subprocess.CompletedProcess[str]
) -> None:
    context = f"{block.where}: $ {line}\n{result.stdout}{result.stderr}"
    summary = SUMMARY.search(shown)
    if summary is not None:
        assert summary.group(0) in result.stdout, context
        assert result.returncode == (0 if summary.group(1) == "0" else 1), context
        return
    assert result.returncode in (0, 1), context
    assert result.returncode == 0 or result.stderr.startswith("durable: "), context


async def execute(block: Block, namespace: dict[str, Any]) -> None:
    """Run a Python block in ``namespace`` with top-level ``await`` allowed."""
    # dont_inherit: the block runs as written, without this module's __future__ imports.
    code = compile(
        block.body, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


def run_command(line: str, cwd: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    """A console line: a plain ``durable`` command runs in this process (``cli.main``, as
    the ``durable`` script does, without a new interpreter per line); one that uses the
    shell or loads the app's code (``--app``: the page may have rewritten that module
    since it was imported here) runs in a shell."""
    if _SHELL_SYNTAX.search(line) or "--app" in line:
        return shell(line, cwd, run_id)
    argv = shlex.split(line.replace("$RUN_ID", run_id))
    if argv[0] != "durable":
        return shell(line, cwd, run_id)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv[1:])
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def shell(line: str, cwd: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RUN_ID=run_id, PATH=_path())
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=90,
        check=False,
    )  # fmt: skip


async def serve_briefly(line: str, cwd: Path) -> None:
    env = dict(os.environ, PATH=_path())
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


@contextlib.contextmanager
def root_logging_kept() -> Any:
    """Undo what a page does to the root logger (a handler added by an example)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _path() -> str:
    return f"{Path(sys.executable).parent}:{os.environ['PATH']}"


def _module_name(label: str) -> str:
    return "docs_" + re.sub(r"\W+", "_", label)
