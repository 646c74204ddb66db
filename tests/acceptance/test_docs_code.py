"""Every code block of the README and ``docs/*.md`` runs (see ``doc_blocks`` for how a
block is classified and marked, ``doc_session`` for how a page runs).

One test per page runs its blocks in document order on one fresh database; one test per
block marked ``<!-- doc-test: skip reason -->`` is skipped with that reason, so
``pytest -ra`` lists every block that does not run and why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable._runs.registry import default_registry
from tests.acceptance.doc_blocks import Block, DocBlockError, Kind, page_name, pages, parse
from tests.acceptance.doc_session import PageSession, console_commands, root_logging_kept

pytestmark = pytest.mark.anyio


def _parse_all() -> tuple[dict[str, list[Block]], list[str]]:
    parsed: dict[str, list[Block]] = {}
    errors: list[str] = []
    for path in pages():
        try:
            parsed[page_name(path)] = parse(path)
        except DocBlockError as error:
            errors.append(str(error))
    return parsed, errors


PAGES, PARSE_ERRORS = _parse_all()
SKIPPED = [block for blocks in PAGES.values() for block in blocks if block.kind is Kind.SKIPPED]
NOT_RUN = (Kind.SKIPPED, Kind.DATA, Kind.OUTPUT)
RUNNABLE = [name for name, blocks in PAGES.items() if any(b.kind not in NOT_RUN for b in blocks)]

# What a page's examples print, beyond its ``text`` output blocks (comments show it there).
PRINTED = {
    "docs/operations.md": ["invalid cron expression '0 25 * * *'", "\nTrue\n"],  # fork link
}


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, server_dsn: str
) -> Iterator[Path]:
    """The reader's project directory, with the page's database in the environment."""
    monkeypatch.chdir(tmp_path)  # the pages' paths are relative to the project
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("DURABLE_DATABASE_URL", database_url)
    monkeypatch.setenv("DURABLE_TEST_DATABASE_URL", server_dsn)
    # The page's workflows join the default registry; drop them afterwards so that a name
    # like "checkout" cannot clash with another page's or another test's.
    monkeypatch.setattr(default_registry, "_by_key", dict(default_registry._by_key))
    with root_logging_kept():
        yield tmp_path


# A hang guard, not a speed check: operations.md alone runs twenty CLI processes.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", RUNNABLE)
async def test_page_code_runs(page: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = PageSession(page, project, capsys)
    try:
        await session.run(PAGES[page])
        await session.finish()
        for expected in PRINTED.get(page, []):
            assert expected in session.all_printed, expected
    finally:
        await session.close()


@pytest.mark.parametrize("block", SKIPPED, ids=[block.where for block in SKIPPED])
def test_marked_block(block: Block) -> None:
    pytest.skip(f"{block.where} ({block.lang}): {block.skip_reason}")


def test_every_code_block_is_run_or_marked() -> None:
    assert not PARSE_ERRORS


def test_the_readme_opens_with_a_complete_program() -> None:
    first = next(block for block in PAGES["README.md"] if block.lang == "python")
    assert first.kind is Kind.PROGRAM, "the README's first snippet must run as written"


def test_every_page_is_read() -> None:
    assert "README.md" in PAGES
    assert {"docs/concepts.md", "docs/operations.md", "docs/versioning.md"} <= set(PAGES)
    assert all(block.kind is not Kind.SKIPPED for block in PAGES["docs/operations.md"])


def test_the_operations_page_shows_every_command() -> None:
    shown = " ".join(
        line
        for block in PAGES["docs/operations.md"]
        if block.kind is Kind.CONSOLE
        for line, _ in console_commands(block.body)
    )
    for command in ("worker", "migrate --dry-run", "runs list", "runs show", "runs retry",
                    "runs fork", "runs signal", "runs cancel", "schedules list",
                    "schedules pause", "schedules resume", "schedules trigger"):  # fmt: skip
        assert f"durable {command}" in shown


def test_the_versioning_page_covers_every_tool() -> None:
    text = "\n".join(block.body for block in PAGES["docs/versioning.md"])
    for needle in ("durable.patched(", "version=2", "export_run", "replay_many",
                   "durable runs export", "durable replay", "--from-db"):  # fmt: skip
        assert needle in text


@pytest.mark.parametrize(
    ("markdown", "error"),
    [
        ("```bash\nls\n```\n", "a bash block runs nothing"),
        ("```console\nuv run pytest\n```\n", "no '$ ' command"),
        ("```py\nprint(1)\n```\n", "unknown block language 'py'"),
        ("<!-- doc-test: skip -->\n```python\nx\n```\n", "needs a reason"),
        ("<!-- doc-test: run -->\n```python\nx\n```\n", "unknown doc-test marker"),
        ("<!-- doc-test: skip why -->\n```text\nx\n```\n", "marker on a text block"),
    ],
)
def test_a_block_that_would_escape_the_test_is_refused(
    tmp_path: Path, markdown: str, error: str
) -> None:
    page = tmp_path / "page.md"
    page.write_text(markdown)
    with pytest.raises(DocBlockError, match=re.escape(error)):
        parse(page)


async def test_an_unmarked_block_that_does_not_run_fails_its_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n```python\nreceipt = await charge(order)\n```\n")
    session = PageSession("page.md", tmp_path, capsys)
    with pytest.raises(NameError, match="charge"):
        await session.run(parse(page))


def test_a_marked_block_is_skipped_with_its_reason(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- doc-test: skip fragment: lines of a workflow -->\n```python\nx\n```\n")
    (block,) = parse(page)
    assert (block.kind, block.skip_reason) == (Kind.SKIPPED, "fragment: lines of a workflow")


async def test_a_text_block_after_a_python_block_is_its_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nprint('shipped')\n```\n\n```text\nshipped o-1\n```\n")
    session = PageSession("page.md", tmp_path, capsys)
    with pytest.raises(AssertionError, match="not printed"):
        await session.run(parse(page))
