"""The fenced code blocks of the docs pages (``README.md`` and ``docs/*.md``), classified.

A block is code when its language is ``python``, ``console`` or ``bash``; every code block
is executed by ``test_docs_code`` unless the line right before its fence is a marker::

    <!-- doc-test: skip why it cannot run alone -->

(an HTML comment: the site and GitHub render nothing for it). A skip needs a reason.
``text``, ``yaml``, ``json``, ``toml`` and unlabelled blocks are not code; any other
language is refused, so that no code block escapes the test by its spelling.

What a Python block is depends on its first line:

- ``# example: <title>``: a self-contained example, run in a fresh namespace;
- ``# <path>.py`` (optionally followed by ``(continued)``): a file of the reader's project,
  written there (appended to when continued); a file under ``tests/`` or named
  ``test_*.py`` is a test file that pytest runs; another is the app's module, imported the
  first time it appears;
- a block that calls ``asyncio.run(`` is a complete program, run as ``__main__``;
- anything else runs in the page's namespace, in document order, with top-level ``await``.

A ``text`` block separated from the Python block before it by blank lines only is what
that block prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_LANGUAGES = frozenset({"python", "console", "bash"})
DATA_LANGUAGES = frozenset({"", "text", "yaml", "json", "toml"})

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!--\s*doc-test:\s*(\S+)\s*(.*?)\s*-->\s*$")
_FILE_HEADER = re.compile(r"^# ([\w./-]+\.py)( \(continued\))?$")


class Kind(Enum):
    """How the session treats a block."""

    EXAMPLE = "example"
    MODULE = "module"
    TEST_FILE = "test file"
    PROGRAM = "program"
    SESSION = "session"
    CONSOLE = "console"
    OUTPUT = "output"
    DATA = "data"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str
    line: int
    lang: str
    body: str
    kind: Kind
    skip_reason: str | None = None
    path: str | None = None  # MODULE and TEST_FILE: the file it is, relative to the project
    continued: bool = False

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def path_or_fail(self) -> str:
        if self.path is None:
            raise DocBlockError(f"{self.where}: a {self.kind.value} block names no file")
        return self.path


class DocBlockError(ValueError):
    """A page whose blocks the test cannot classify (an unknown language, a bad marker)."""


def pages() -> list[Path]:
    """The pages whose code the test executes: the README, then ``docs/*.md``."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def page_name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def parse(path: Path) -> list[Block]:
    """Every fenced block of the page at ``path``, classified, in document order."""
    text = path.read_text("utf-8")
    found: list[Block] = []
    previous_end = 0
    for match in _FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        before = text[previous_end : match.start()]
        block = _classify(page_name(path), line, lang, body, before, found)
        found.append(block)
        previous_end = match.end()
    return found


def _classify(
    page: str, line: int, lang: str, body: str, before: str, earlier: list[Block]
) -> Block:
    where = f"{page}:{line}"
    marker = _marker(before, where)
    if lang in DATA_LANGUAGES:
        if marker is not None:
            raise DocBlockError(f"{where}: a doc-test marker on a {lang or 'plain'} block")
        output = lang == "text" and not before.strip() and earlier and earlier[-1].lang == "python"
        return Block(page, line, lang, body, Kind.OUTPUT if output else Kind.DATA)
    if lang not in CODE_LANGUAGES:
        raise DocBlockError(f"{where}: unknown block language {lang!r}")
    if marker is not None:
        return Block(page, line, lang, body, Kind.SKIPPED, skip_reason=marker)
    if lang == "console":
        if not console_commands(body):
            raise DocBlockError(f"{where}: a console block with no '$ ' command runs nothing")
        return Block(page, line, lang, body, Kind.CONSOLE)
    if lang == "bash":
        raise DocBlockError(f"{where}: a bash block runs nothing; write it as console or skip it")
    return _python(page, line, body)


def _python(page: str, line: int, body: str) -> Block:
    first = body.split("\n", 1)[0]
    if first.startswith("# example: "):
        return Block(page, line, "python", body, Kind.EXAMPLE)
    header = _FILE_HEADER.match(first)
    if header is not None:
        path, continued = header.group(1), header.group(2) is not None
        name = Path(path).name
        is_test = path.startswith("tests/") or name.startswith("test_")
        kind = Kind.TEST_FILE if is_test else Kind.MODULE
        return Block(page, line, "python", body, kind, path=path, continued=continued)
    if "asyncio.run(" in body:
        return Block(page, line, "python", body, Kind.PROGRAM)
    return Block(page, line, "python", body, Kind.SESSION)


def _marker(before: str, where: str) -> str | None:
    lines = before.rstrip("\n").rsplit("\n", 1)
    last = lines[-1] if lines else ""
    match = _MARKER.search(last)
    if match is None:
        if "doc-test:" in last:
            raise DocBlockError(f"{where}: malformed doc-test marker {last.strip()!r}")
        return None
    verb, reason = match.group(1), match.group(2)
    if verb != "skip":
        raise DocBlockError(f"{where}: unknown doc-test marker {verb!r} (only 'skip')")
    if not reason:
        raise DocBlockError(f"{where}: a doc-test skip needs a reason")
    return reason


def console_commands(body: str) -> list[tuple[str, str]]:
    """The ``$ `` commands of a console block, each with the output the page shows for it."""
    parts = re.split(r"^\$ ", body, flags=re.MULTILINE)[1:]
    return [(part.partition("\n")[0], part.partition("\n")[2]) for part in parts]
