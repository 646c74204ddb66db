"""Every example of ``docs/versioning.md`` runs, in document order, with the helpers of
``test_operations_doc``: a block headed ``# myapp/workflows.py`` is the app's module as
it stands from there on (written to disk; the first one is also imported here), a block
headed ``# tests/...`` is a test file run by pytest in a subprocess, and the other Python
blocks run here inside ``async with engine:``. Every ``$ durable ...`` line runs in a shell
in the app's directory; where the doc shows a ``N run(s) replayed: ...`` line, the real
output has it and the exit status matches (0 only with 0 incompatible). A ``text`` block
after a Python block is what that block prints."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.acceptance.test_operations_doc import ordered_blocks, shell

pytestmark = pytest.mark.anyio

DOC = Path(__file__).resolve().parents[2] / "docs" / "versioning.md"
MODULE = "# myapp/workflows.py"
SUMMARY = re.compile(r"^\d+ run\(s\) replayed: \d+ ok, (\d+) incompatible$", re.MULTILINE)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the doc's paths are relative to the project
    monkeypatch.setenv("DURABLE_DATABASE_URL", database_url)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    yield tmp_path
    for name in ("myapp.workflows", "myapp"):
        sys.modules.pop(name, None)


async def run_block(source: str, index: int, namespace: dict[str, Any]) -> None:
    code = compile(
        source, f"{DOC.name} block {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


def run_test_file(source: str, app: Path) -> None:
    path = app / source.splitlines()[0].removeprefix("# ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    line = f"{sys.executable} -m pytest -q -p no:cacheprovider {path.relative_to(app)}"
    result = shell(line, app, "")
    assert result.returncode == 0, result.stdout + result.stderr


async def run_console(block: str, app: Path, run_id: str) -> None:
    commands = re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]
    for command in commands:
        line, _, shown = command.partition("\n")
        result = await anyio.to_thread.run_sync(shell, line, app, run_id)
        summary = SUMMARY.search(shown)
        if summary is None:
            assert result.returncode == 0, f"{line}\n{result.stderr}"
            continue
        assert summary.group(0) in result.stdout, f"{line}\n{result.stdout}{result.stderr}"
        expected = 0 if summary.group(1) == "0" else 1
        assert result.returncode == expected, f"{line}\n{result.stdout}{result.stderr}"


async def test_every_example_runs(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    walked = ordered_blocks(DOC)
    engine = None
    try:
        for index, (lang, body) in enumerate(walked, start=1):
            if lang == "python" and body.startswith(MODULE):
                (app_dir / "myapp" / "workflows.py").write_text(body)
                if engine is None:
                    module = importlib.import_module("myapp.workflows")
                    namespace.update(vars(module))
                    engine = await module.engine.__aenter__()
            elif lang == "python" and body.startswith("# tests/"):
                await anyio.to_thread.run_sync(run_test_file, body, app_dir)
            elif lang == "python":
                capsys.readouterr()
                await run_block(body, index, namespace)
                printed = capsys.readouterr().out
                following = walked[index] if index < len(walked) else ("", "")
                if following[0] == "text":
                    assert following[1] in printed
            elif lang == "console":
                handle = namespace.get("handle")
                await run_console(body, app_dir, str(handle.run_id) if handle else "")
    finally:
        if engine is not None:
            await engine.__aexit__(None, None, None)
    assert engine is not None
    assert os.listdir(app_dir / "tests" / "histories")


def test_the_doc_covers_every_tool() -> None:
    text = DOC.read_text("utf-8")
    for needle in ("durable.patched(", "version=2", "export_run", "replay_many",
                   "durable runs export", "durable replay", "--from-db"):  # fmt: skip
        assert needle in text
