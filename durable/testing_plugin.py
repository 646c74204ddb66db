"""durable's pytest plugin (entry point ``pytest11: durable``), loaded by pytest when
``durable-sdk`` is installed; disable it with ``-p no:durable``.

Fixtures:

- ``durable_env``: a ``durable.testing.Environment`` entered for the test (a fresh
  database, an engine with a worker, a clock you move). It is an async fixture: use it from
  ``@pytest.mark.anyio`` tests (anyio's plugin) or with pytest-asyncio. Options per test::

      @pytest.mark.durable(workflows=[approval], concurrency=4)
      async def test_approval(durable_env): ...

- ``durable_server_url``: the PostgreSQL server of the session: ``DURABLE_TEST_DATABASE_URL``,
  or one embedded server started on first use and stopped at the end of the session. It
  never falls back to ``DURABLE_DATABASE_URL`` or ``DATABASE_URL``: tests must not create
  databases on the server your app uses.
- ``durable_spans``: a ``SpanCapture`` (needs ``opentelemetry-sdk``); when a test asks for
  it, ``durable_env``'s engine reports its spans to it.

Option ``--durable-db-prefix`` (default ``durable_env``) names the test databases
``<prefix>_<random>``, e.g. to tell parallel CI jobs apart on one server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from durable._store.embedded import EmbeddedPostgres
from durable.testing import Environment

__all__ = [
    "SpanCapture",
    "durable_env",
    "durable_server_url",
    "durable_spans",
    "pytest_addoption",
    "pytest_configure",
]

TEST_URL_ENV = "DURABLE_TEST_DATABASE_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--durable-db-prefix``."""
    group = parser.getgroup("durable")
    group.addoption(
        "--durable-db-prefix",
        default="durable_env",
        help="prefix of the databases durable_env creates (default: durable_env)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``durable`` marker."""
    config.addinivalue_line(
        "markers", "durable(workflows=None, **engine_options): options of the durable_env fixture"
    )


class SpanCapture:
    """Spans finished by the engine of ``durable_env``, kept in memory."""

    def __init__(self) -> None:
        try:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "durable_spans needs opentelemetry-sdk (the durable-sdk[otel] extra)"
            ) from exc
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def spans(self) -> list[Any]:
        """The finished spans, oldest first."""
        return list(self.exporter.get_finished_spans())

    def names(self) -> list[str]:
        """The names of the finished spans, e.g. ``["start_workflow checkout", ...]``."""
        return [span.name for span in self.spans]

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()


@pytest.fixture(scope="session")
def durable_server_url() -> Iterator[str]:
    """The session's PostgreSQL server: ``DURABLE_TEST_DATABASE_URL`` or an embedded one."""
    explicit = os.environ.get(TEST_URL_ENV)
    if explicit:
        yield explicit
        return
    data_dir = Path(tempfile.mkdtemp(prefix="durable-pytest-pg-"))
    embedded = EmbeddedPostgres(delete_on_stop=True)
    try:
        yield anyio.run(embedded.start, data_dir)
    finally:
        anyio.run(embedded.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def durable_spans() -> Iterator[SpanCapture]:
    """Capture the spans of this test's ``durable_env`` engine."""
    capture = SpanCapture()
    yield capture
    capture.tracer_provider.shutdown()


@pytest.fixture
async def durable_env(
    request: pytest.FixtureRequest, durable_server_url: str
) -> AsyncIterator[Environment]:
    """An entered ``Environment`` on a fresh database of the session's server."""
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("durable")
    if marker is not None:
        if marker.args:
            raise TypeError("@pytest.mark.durable takes keyword arguments only")
        options.update(marker.kwargs)
    if "durable_spans" in request.fixturenames:
        capture: SpanCapture = request.getfixturevalue("durable_spans")
        options.setdefault("tracer_provider", capture.tracer_provider)
    prefix = request.config.getoption("--durable-db-prefix")
    async with Environment(durable_server_url, database_prefix=prefix, **options) as env:
        yield env
