"""Developer tasks: ``uv run nox -s tests|lint|typecheck|docs|soak|failover|bench`` (args go
to the tool).

Each session syncs the locked environment (``uv sync --frozen``) into its own virtualenv,
so nox runs exactly the versions CI runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

LINT_PATHS = ["durable", "tests", "examples", "bench", "noxfile.py"]


def _sync(session: nox.Session) -> None:
    # uv installs into the project's .venv by default; point it at this session's env.
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (all tiers unless paths or options are given)."""
    _sync(session)
    session.run("pytest", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The long chaos soak: workers SIGKILLed under load, ``DURABLE_SOAK_KILLS`` times
    (default 100), then runs, kills, failures and duplicates printed. The suite runs the
    same test with 20 kills. Needs ``DURABLE_TEST_DATABASE_URL`` (or the embedded server)."""
    _sync(session)
    kills = os.environ.get("DURABLE_SOAK_KILLS") or "100"
    session.run(
        "pytest",
        "tests/chaos/test_kill_worker.py::test_soak_sigkilled_workers_under_load_lose_and_repeat_nothing",
        "-s",
        "--timeout=0",  # a hundred kills take minutes; the test waits on conditions itself
        *session.posargs,
        env={"DURABLE_SOAK_KILLS": kills},
    )


@nox.session
def failover(session: nox.Session) -> None:
    """The failover chaos tests: a primary and a streaming standby started on this machine
    (PostgreSQL server binaries needed, ``$DURABLE_PG_BIN`` or Debian's), the primary killed
    under load and the standby promoted; prints the time the workers took to resume."""
    _sync(session)
    session.run("pytest", "tests/chaos/test_failover.py", "-s", "-p", "no:cacheprovider",
                *session.posargs)  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check, and the layer contracts (import-linter)."""
    _sync(session)
    paths = [path for path in LINT_PATHS if Path(path).exists()]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    _sync(session)
    session.run("mypy", "--strict", "durable")


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site, built with ``mkdocs build --strict`` into a throwaway directory.

    Syncs the locked environment plus the ``docs`` dependency group (mkdocs-material,
    mkdocstrings); any warning (a broken link or anchor, a docstring griffe cannot parse)
    fails the session. Preview with ``uv run --group docs mkdocs serve``.
    """
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--group",
        "docs",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )
    site = tempfile.mkdtemp(prefix="durable-docs-")
    try:
        session.run(
            "mkdocs", "build", "--strict", "--site-dir", site, *session.posargs,
            env={"NO_MKDOCS_2_WARNING": "1"},
        )  # fmt: skip
    finally:
        shutil.rmtree(site, ignore_errors=True)


@nox.session
def bench(session: nox.Session) -> None:
    """durable vs DBOS (``python -m bench``; args go to it, e.g. ``-- --quick --only step``).

    Syncs the locked environment plus the ``bench`` dependency group (DBOS, pgqueuer).
    Runs against ``$DURABLE_BENCH_DATABASE_URL``, else an embedded PostgreSQL.
    """
    if not Path("bench", "__main__.py").exists():
        session.skip("bench/__main__.py does not exist yet")
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--group",
        "bench",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )
    session.run("python", "-m", "bench", *session.posargs)
