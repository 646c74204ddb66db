"""``durable webhooks``: add (secret printed once, or read from an environment variable),
list without secrets, enable/disable/remove, deliveries; unknown ids exit 1."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.test_cli import cli

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNDU2Nzg="


async def test_add_list_disable_remove(database_url: str) -> None:
    added = await cli(
        database_url, "webhooks", "add", "https://example.com/hooks", "--kind", "run.failed",
        "--workflow", "checkout", "--secret-env", "HOOK_SECRET", "--json",
        env={"HOOK_SECRET": SECRET},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    [endpoint] = json.loads(added.stdout)
    assert endpoint["secret"] == SECRET
    assert endpoint["kinds"] == ["run.failed"]
    assert endpoint["workflows"] == ["checkout"]

    listed = await cli(database_url, "webhooks", "list")
    assert listed.returncode == 0, listed.stderr
    assert endpoint["id"] in listed.stdout
    assert "kinds=run.failed" in listed.stdout
    assert SECRET.removeprefix("whsec_") not in listed.stdout + listed.stderr

    disabled = await cli(database_url, "webhooks", "disable", endpoint["id"])
    assert disabled.returncode == 0, disabled.stderr
    shown = json.loads((await cli(database_url, "webhooks", "list", "--json")).stdout)
    assert [e["disabled"] for e in shown] == [True]
    assert "secret" not in shown[0]

    deliveries = await cli(database_url, "webhooks", "deliveries", endpoint["id"], "--json")
    assert deliveries.returncode == 0, deliveries.stderr
    assert json.loads(deliveries.stdout) == []

    assert (await cli(database_url, "webhooks", "remove", endpoint["id"])).returncode == 0
    again = await cli(database_url, "webhooks", "remove", endpoint["id"])
    assert again.returncode == 1
    assert "no webhook endpoint" in again.stderr


async def test_a_generated_secret_is_printed_once_and_bad_input_stores_nothing(
    database_url: str,
) -> None:
    added = await cli(database_url, "webhooks", "add", "http://127.0.0.1:9/in")
    assert added.returncode == 0, added.stderr
    assert "secret: whsec_" in added.stdout
    bad = await cli(database_url, "webhooks", "add", "ftp://example.com/in")
    assert bad.returncode == 1
    assert "http://" in bad.stderr
    unknown_kind = await cli(database_url, "webhooks", "add", "https://x.io", "--kind", "nope")
    assert unknown_kind.returncode == 1
    missing = await cli(database_url, "webhooks", "add", "https://x.io", "--secret-env", "UNSET_X")
    assert missing.returncode == 1
    listed = json.loads((await cli(database_url, "webhooks", "list", "--json")).stdout)
    assert len(listed) == 1
