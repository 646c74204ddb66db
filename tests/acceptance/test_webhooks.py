"""Signed webhooks become signals: Standard Webhooks verification, the webhook-id as the
delivery key, each delivery kind as an HTTP status, and nothing stored for a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

import durable
from durable import Engine, RunStatus, workflow
from durable.contrib.fastapi import durable_lifespan, durable_router
from durable.contrib.webhooks import WebhookVerifier, deliver_webhook
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.web_support import OTHER_SECRET, SECRET, in_process, signal_rows, signed

pytestmark = pytest.mark.anyio


@dataclass
class Paid:
    amount: int


@workflow(name="hook_order")
async def hook_order(order: str) -> int:
    paid = await durable.wait_for_signal("paid", type=Paid)
    return paid.amount


@workflow(name="hook_quick")
async def hook_quick() -> str:
    return "done"


@pytest.fixture
async def client(make_engine: EngineFactory) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    engine = make_engine(hook_order, hook_quick)
    app = FastAPI(lifespan=durable_lifespan(engine))
    app.include_router(durable_router(engine, webhook_secrets=[SECRET]))
    async with in_process(app) as http:
        yield engine, http


async def _waiting(engine: Engine, key: str = "order-1") -> str:
    handle = await engine.start(hook_order, key, idempotency_key=key)
    await support.wait_for_status(handle, "waiting", timeout=10)
    return str(handle.run_id)


async def test_a_signed_webhook_is_delivered_and_its_replay_is_a_duplicate(
    client: tuple[Engine, httpx.AsyncClient], database_url: str
) -> None:
    engine, http = client
    run_id = await _waiting(engine)
    body, headers = signed({"amount": 1200}, msg_id="msg_good")
    answer = await http.post(f"/runs/{run_id}/signals/paid", content=body, headers=headers)
    assert answer.status_code == 202
    assert answer.json() == {"kind": "delivered", "run_id": run_id}
    assert await engine.handle(run_id).result(timeout=10) == 1200

    replay = await http.post(f"/runs/{run_id}/signals/paid", content=body, headers=headers)
    assert replay.status_code in (200, 410)  # the run may already have finished
    assert await signal_rows(database_url) == 1


async def test_a_replayed_id_on_a_live_run_is_duplicate_and_stored_once(
    client: tuple[Engine, httpx.AsyncClient], database_url: str
) -> None:
    engine, http = client
    handle = await engine.start(hook_order, "order-2", idempotency_key="order-2")
    first_body, first = signed({"amount": 1}, msg_id="msg_same")
    again_body, again = signed({"amount": 2}, msg_id="msg_same")
    url = "/workflows/hook_order/signals/other?key=order-2"  # buffered: nobody waits on it
    assert (await http.post(url, content=first_body, headers=first)).status_code == 202
    duplicate = await http.post(url, content=again_body, headers=again)
    assert duplicate.status_code == 200
    assert duplicate.json()["kind"] == "duplicate"
    assert await signal_rows(database_url) == 1
    assert (await handle.status()) != RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_secret", 401),
        ("tampered_body", 401),
        ("missing_headers", 401),
        ("garbage_signature", 401),
        ("stale_timestamp", 401),
        ("future_timestamp", 401),
        ("malformed_body", 400),
    ],
)
async def test_refused_requests_store_no_signal(
    client: tuple[Engine, httpx.AsyncClient], database_url: str, case: str, expected: int
) -> None:
    engine, http = client
    run_id = await _waiting(engine)
    body, headers = signed({"amount": 5}, msg_id=f"msg_{case}")
    if case == "wrong_secret":
        body, headers = signed({"amount": 5}, secret=OTHER_SECRET)
    elif case == "tampered_body":
        body = b'{"amount": 5000}'
    elif case == "missing_headers":
        del headers["webhook-signature"]
    elif case == "garbage_signature":
        headers["webhook-signature"] = "v1 not-base64!!"
    elif case == "stale_timestamp":
        body, headers = signed({"amount": 5}, at=datetime.now(UTC) - timedelta(minutes=6))
    elif case == "future_timestamp":
        body, headers = signed({"amount": 5}, at=datetime.now(UTC) + timedelta(minutes=6))
    elif case == "malformed_body":
        body, headers = signed(raw=b'{"amount": ')
    answer = await http.post(f"/runs/{run_id}/signals/paid", content=body, headers=headers)
    assert answer.status_code == expected
    assert SECRET not in answer.text
    assert await signal_rows(database_url) == 0
    assert (await engine.get_run(run_id)).status == RunStatus.WAITING


async def test_delivery_kinds_map_to_statuses(
    client: tuple[Engine, httpx.AsyncClient], database_url: str
) -> None:
    engine, http = client
    run_id = await _waiting(engine, "order-3")
    body, headers = signed({"amount": "not a number"}, msg_id="msg_bad_payload")
    invalid = await http.post(f"/runs/{run_id}/signals/paid", content=body, headers=headers)
    assert (invalid.status_code, invalid.json()["kind"]) == (422, "invalid_payload")

    body, headers = signed({"amount": 1}, msg_id="msg_unknown_run")
    unknown = "/runs/00000000-0000-4000-8000-000000000000/signals/paid"
    assert (await http.post(unknown, content=body, headers=headers)).status_code == 404
    by_key = "/workflows/hook_order/signals/paid?key=no-such-order"
    assert (await http.post(by_key, content=body, headers=headers)).status_code == 404

    done = await engine.start(hook_quick)
    assert await done.result(timeout=10) == "done"
    body, headers = signed({"amount": 1}, msg_id="msg_finished")
    finished = await http.post(f"/runs/{done.run_id}/signals/paid", content=body, headers=headers)
    assert (finished.status_code, finished.json()["kind"]) == (410, "run_finished")
    assert await signal_rows(database_url) == 0

    body, headers = signed({"amount": 77}, msg_id="msg_by_key")
    ok = await http.post("/workflows/hook_order/signals/paid?key=order-3", content=body,
                         headers=headers)  # fmt: skip
    assert (ok.status_code, ok.json()["kind"]) == (202, "delivered")
    assert await engine.handle(run_id).result(timeout=10) == 77


async def test_deliver_webhook_works_without_a_framework(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(hook_order) as engine:
        handle = await engine.start(hook_order, "order-4")
        verifier = WebhookVerifier(OTHER_SECRET, SECRET)  # rotation: either secret verifies
        body, headers = signed({"amount": 9}, msg_id="msg_plain")
        outcome = await deliver_webhook(
            engine, verifier, body, headers, name="paid", run_id=handle.run_id
        )
        assert outcome.status_code == 202
        assert outcome.delivery is not None
        assert await handle.result(timeout=10) == 9
    assert SECRET not in repr(verifier)
    assert SECRET.removeprefix("whsec_") not in repr(verifier)


def test_a_bad_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="secret") as caught:
        WebhookVerifier("whsec_")
    assert "whsec_" not in str(caught.value).replace("a webhook secret", "")
    with pytest.raises(ValueError, match="at least one"):
        WebhookVerifier()


async def test_without_secrets_there_is_no_signal_route(make_engine: EngineFactory) -> None:
    engine = make_engine(hook_order)
    app = FastAPI(lifespan=durable_lifespan(engine))
    app.include_router(durable_router(engine))
    async with in_process(app) as http:
        handle = await engine.start(hook_order, "order-5")
        body, headers = signed({"amount": 1})
        answer = await http.post(f"/runs/{handle.run_id}/signals/paid", content=body,
                                 headers=headers)  # fmt: skip
        assert answer.status_code in (404, 405)


async def test_an_oversized_payload_is_413_and_not_stored(
    make_engine: EngineFactory, database_url: str
) -> None:
    engine = make_engine(hook_order, max_signal_bytes=64)
    app = FastAPI(lifespan=durable_lifespan(engine))
    app.include_router(durable_router(engine, webhook_secrets=[SECRET]))
    async with in_process(app) as http:
        handle = await engine.start(hook_order, "order-6")
        body, headers = signed({"amount": 1, "note": "x" * 200}, msg_id="msg_big")
        answer = await http.post(f"/runs/{handle.run_id}/signals/paid", content=body,
                                 headers=headers)  # fmt: skip
        assert answer.status_code == 413
        body, headers = signed({"note": "x" * 10_000}, msg_id="msg_huge")  # not even read
        answer = await http.post(f"/runs/{handle.run_id}/signals/paid", content=body,
                                 headers=headers)  # fmt: skip
        assert answer.status_code == 413
    assert await signal_rows(database_url) == 0
