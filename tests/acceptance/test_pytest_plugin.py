"""The pytest plugin (``durable.testing_plugin``, entry point ``pytest11: durable``), run
in fresh pytest processes with ``pytester``: its fixtures, its option, its marker, and no
fallback to the app's ``DURABLE_DATABASE_URL``."""

from __future__ import annotations

import os

import pytest

from durable.testing import Environment

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

from durable.testing import Environment

import durable
from durable import workflow

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@workflow(name="plugin_greet")
async def greet(name: str) -> str:
    await durable.sleep("3d")
    return f"hello {name}"


@pytest.mark.durable(workflows=[greet])
async def test_env_runs_a_workflow(durable_env, durable_spans):
    handle = await durable_env.start(greet, "ada")
    await durable_env.run_until_idle()
    assert await handle.result(timeout=10) == "hello ada"
    assert durable_env.database_url.rsplit("/", 1)[-1].startswith("ci_job_7_")
    assert "run_workflow plugin_greet" in durable_spans.names()


async def test_env_without_marker(durable_env, durable_server_url):
    assert durable_server_url != "postgresql://nobody@127.0.0.1:1/not_this_one"
    assert durable_env.engine.worker is not None
"""


def test_the_plugin_fixtures_work_in_a_users_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # The app's database must never be used by tests: a bogus one proves it is not read.
    monkeypatch.setenv("DURABLE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/not_this_one")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/not_this_one")
    result = pytester.runpytest_subprocess("--durable-db-prefix", "ci_job_7", "-p", "anyio")
    result.assert_outcomes(passed=2)


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_off="def test_no_fixture(request):\n"
        "    assert 'durable_env' not in request.fixturenames\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:durable", "--fixtures")
    assert "durable_env" not in result.stdout.str()
    with_plugin = pytester.runpytest_subprocess("--fixtures")
    assert "durable_env" in with_plugin.stdout.str()


@pytest.mark.anyio
async def test_the_projects_own_fixtures_do_not_clash(
    request: pytest.FixtureRequest, server_dsn: str, durable_server_url: str
) -> None:
    # Our own suite loads the plugin too: its fixtures sit beside tests/conftest.py's.
    assert request.config.pluginmanager.has_plugin("durable")
    if os.environ.get("DURABLE_TEST_DATABASE_URL"):
        assert durable_server_url == server_dsn


def test_without_a_test_url_the_embedded_server_is_used_never_the_apps(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = "postgresql://nobody@127.0.0.1:1/not_this_one"
    pytester.makepyfile(
        test_server=f"def test_server(durable_server_url):\n"
        f"    assert durable_server_url != {bogus!r}\n"
        f"    assert 'not_this_one' not in durable_server_url\n"
    )
    monkeypatch.delenv("DURABLE_TEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("DURABLE_DATABASE_URL", bogus)
    monkeypatch.setenv("DATABASE_URL", bogus)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("prefix", ['x"; DROP DATABASE postgres; --', "", "a" * 41])
def test_a_prefix_that_is_not_a_plain_name_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="database_prefix"):
        Environment("postgresql://unused", database_prefix=prefix)
