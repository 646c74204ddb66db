"""Bad command-line arguments: one clear line on stderr and exit status 2, never a
traceback, and never a bad value reported as an unreachable database. In-process."""

from __future__ import annotations

import uuid

import anyio
import pytest

from durable.cli import main

RUN = str(uuid.uuid4())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


PARSE_ERRORS = [
    ("runs", "list", "--since", "9999999w"),
    ("runs", "list", "--since", "99999999999999999999d"),
    ("runs", "list", "--until", "1e400s"),
    ("runs", "list", "--limit", "0"),
    ("runs", "list", "--limit", "-1"),
    ("runs", "list", "--limit", str(10**9)),
    ("runs", "list", "--workflow", "a\x00b"),
    ("runs", "list", "--tag", "t" * 10_000),
    ("runs", "list", "--queue", "\udc80"),
    ("runs", "list", "--cursor", "!!garbage"),
    ("runs", "list", "--cursor", "W" * 100_000),
    ("runs", "show", "x" * 100_000),
    ("runs", "signal", RUN, "go\x00"),
    ("runs", "signal", RUN, "go", "1", "--idempotency-key", "\x00"),
    ("runs", "fork", RUN, "--from-step", "s" * 10_000),
    ("schedules", "pause", "\x00"),
    ("runs", "list", "postgresql://someone:pw@127.0.0.1:1/db"),
]


@pytest.mark.parametrize("argv", PARSE_ERRORS, ids=range(len(PARSE_ERRORS)))
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, err = _run(capsys, "--database-url", "postgresql://nobody@127.0.0.1:1/none", *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert "database error" not in err


BAD_PAYLOADS = [
    '"\\u0000"',
    '{"a\\u0000": 1}',
    '"\\udc00"',
    "NaN",
    "[Infinity]",
    "1e999",
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 5000 + "1" + "}" * 5000,
    "9" * 5000,
]


@pytest.mark.anyio
@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=range(len(BAD_PAYLOADS)))
async def test_a_bad_signal_payload_is_a_usage_error_not_a_database_error(
    capsys: pytest.CaptureFixture[str], database_url: str, payload: str
) -> None:
    argv = ["runs", "signal", RUN, "go", payload, "--database-url", database_url]
    code = await anyio.to_thread.run_sync(main, argv)  # main runs its own event loop
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "database" not in err
