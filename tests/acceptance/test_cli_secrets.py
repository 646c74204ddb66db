"""The command line and the engine never show a database password, whatever the URL form
or the error."""

from __future__ import annotations

import pytest

from durable import Engine
from tests.acceptance.test_cli import cli

pytestmark = pytest.mark.anyio

SECRET = "hunter2secret"

# Every form points at a closed port, so each command fails to connect.
UNREACHABLE = [
    f"postgresql://someone:{SECRET}@127.0.0.1:1/nowhere",
    f"postgresql://:{SECRET}@127.0.0.1:1/nowhere",
    f"postgresql://someone@127.0.0.1:1/nowhere?password={SECRET}",
    f"postgresql://someone:pa%40{SECRET}@127.0.0.1:1/nowhere",
    f"postgresql://someone:pa@{SECRET}@127.0.0.1:1/nowhere",
    f"postgresql://someone:pa/{SECRET}@127.0.0.1:1/nowhere",
    f"postgresql://someone:{SECRET}@127.0.0.1:1,127.0.0.1:2/nowhere",
    f"postgresql://someone:{SECRET}@127.0.0.1:notaport/nowhere",
    f"host=127.0.0.1 port=1 user=someone password={SECRET} dbname=nowhere",
]


def _assert_hidden(output: str) -> None:
    assert SECRET not in output
    assert "hunter2" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("url", UNREACHABLE)
async def test_an_unreachable_url_is_reported_without_its_password(url: str) -> None:
    result = await cli(url, "runs", "list")
    assert result.returncode in (1, 2), result.stderr
    assert result.stderr.startswith("durable: ")
    _assert_hidden(result.stdout + result.stderr)


@pytest.mark.parametrize("url", UNREACHABLE[:3])
async def test_a_url_from_the_environment_is_reported_without_its_password(url: str) -> None:
    for command in (("runs", "list"), ("migrate",), ("schedules", "list")):
        result = await cli(None, *command, env={"DURABLE_DATABASE_URL": url})
        assert result.returncode == 1, result.stderr
        assert "database error" in result.stderr
        _assert_hidden(result.stdout + result.stderr)


async def test_a_url_passed_in_the_wrong_place_is_not_echoed() -> None:
    stray = f"postgresql://someone:{SECRET}@127.0.0.1:1/nowhere"
    result = await cli(None, "runs", "list", stray)
    assert result.returncode == 2
    _assert_hidden(result.stdout + result.stderr)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://someone:pa/{SECRET}@127.0.0.1:1/nowhere",
        f"postgresql://someone:{SECRET}@127.0.0.1:notaport/nowhere",
        f"postgresql://someone:pa?{SECRET}@127.0.0.1:1/nowhere",
        f"host=127.0.0.1 port=1 password={SECRET}",
    ],
)
async def test_the_engine_never_shows_the_password_of_a_malformed_url(url: str) -> None:
    with pytest.raises((ValueError, OSError)) as caught:
        async with Engine(url, worker=False):
            pass
    assert SECRET not in str(caught.value)
    assert "hunter2" not in str(caught.value)
