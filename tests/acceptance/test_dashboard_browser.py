"""The dashboard in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``)
driven by Playwright, against a real uvicorn on 127.0.0.1.

Walks what an operator does: open the runs page, filter, open a run, read its timeline
with a retried step, watch a live update arrive, get refused an action without the token
and do it with the token, and see a hostile payload rendered as text.
``DURABLE_SCREENSHOTS=1`` also saves screenshots of the main pages in docs/screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from durable import Engine, RunStatus
from durable.dashboard import dashboard_app
from tests.acceptance import dashboard_support as ds
from tests.acceptance import support

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TOKEN = "browser-test-token-42"
WAIT_MS = 30_000  # generous: a loaded CI machine

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

WORKFLOWS = ds.WORKFLOWS
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    tab = await context.new_page()
    tab.set_default_timeout(WAIT_MS)
    dialogs: list[str] = []
    tab.on("dialog", lambda d: dialogs.append(d.message))
    tab.dialogs = dialogs
    try:
        yield tab
    finally:
        await context.close()


async def shot(page: Any, name: str) -> None:
    if os.environ.get("DURABLE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_browse_filter_and_read_a_run(engine: Engine, page: Any) -> None:
    done = await engine.start(ds.order, 21, tags=["tenant:acme"])
    failed = await engine.start(ds.broken, "the disk is full")
    waiting = await engine.start(ds.approval, "ship it")
    tree = await engine.start(ds.parent, 1)
    assert await done.result(timeout=30) == 42
    assert await tree.result(timeout=30) == 2
    await support.wait_for_status(failed, "failed", timeout=30)
    await support.wait_for_status(waiting, "waiting", timeout=30)
    await engine.schedules.create("nightly-report", ds.leaf, "0 2 * * *", args=[1])

    async with ds.serve(dashboard_app(engine)) as base:
        await page.goto(f"{base}/")
        await page.wait_for_selector("#throughput")
        await shot(page, "overview")

        await page.goto(f"{base}/runs")
        await page.wait_for_selector(f"tr[data-run='{done.run_id}']")
        await shot(page, "runs")
        await page.check("input[name=status][value=failed]")
        await page.click("#filters button[type=submit]")
        await page.wait_for_selector(f"tr[data-run='{failed.run_id}']")
        assert await page.locator(f"tr[data-run='{done.run_id}']").count() == 0
        assert "status=failed" in page.url

        await page.fill("input[name=q]", "")
        await page.uncheck("input[name=status][value=failed]")
        await page.select_option("select[name=workflow]", "dash.order")
        await page.click("#filters button[type=submit]")
        await page.click(f"tr[data-run='{done.run_id}'] a")
        await page.wait_for_selector("#timeline")
        retried = page.locator("tr[data-key='step:wobbly#0']")
        assert "2" in await retried.locator("td.retried").inner_text()
        assert "retried" in await retried.inner_text()
        assert await page.locator("#run-id").inner_text() == str(done.run_id)
        await shot(page, "run")

        await page.goto(f"{base}/runs/{failed.run_id}")
        assert "NonRetryableError" in await page.locator("#run-error").inner_text()
        await page.goto(f"{base}/workflows")
        assert "dash.order" in await page.locator("#workflows").inner_text()
        await shot(page, "workflows")
        await page.goto(f"{base}/schedules")
        assert "nightly-report" in await page.locator("#schedules").inner_text()
        await shot(page, "schedules")
        await page.goto(f"{base}/queues")
        await page.wait_for_selector("#queues")
        await shot(page, "queues")


async def test_a_live_update_arrives_while_the_page_is_open(engine: Engine, page: Any) -> None:
    waiting = await engine.start(ds.approval, "live")
    await support.wait_for_status(waiting, "waiting", timeout=30)
    async with ds.serve(dashboard_app(engine, debounce=0.05)) as base:
        await page.goto(f"{base}/runs")
        await page.wait_for_selector("body[data-live-open]")  # the event stream is open
        await page.wait_for_selector(f"tr[data-run='{waiting.run_id}'] .status-waiting")
        fresh = await engine.start(ds.order, 5)  # a new run: the workers' wake reaches the page
        await page.wait_for_selector(f"tr[data-run='{fresh.run_id}']")

        await page.goto(f"{base}/runs/{waiting.run_id}")
        await page.wait_for_selector("body[data-live-open]")
        await engine.signal(waiting.run_id, "approve", "yes")
        await page.wait_for_selector("h1 .status-completed")
        assert "live: yes" in await page.locator("#output").inner_text()


async def test_an_action_needs_the_token(engine: Engine, page: Any) -> None:
    waiting = await engine.start(ds.approval, "cancel me")
    await support.wait_for_status(waiting, "waiting", timeout=30)
    app = dashboard_app(engine, allow_actions=True, token=TOKEN)
    async with ds.serve(app) as base:
        await page.goto(f"{base}/runs/{waiting.run_id}")
        await page.wait_for_selector("#sign-in-hint")
        assert await page.locator("#actions").count() == 0
        # A form posted without the token (as a forged page would) is refused.
        csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        refused = await page.request.post(
            f"{base}/runs/{waiting.run_id}/cancel", form={"csrf": csrf}
        )
        assert refused.status == 401
        assert await waiting.status() == RunStatus.WAITING

        await page.fill("input[name=token]", "not-it")
        await page.click("form.login button")
        assert "not the dashboard token" in await page.locator("#problem").inner_text()
        await page.goto(f"{base}/runs/{waiting.run_id}")
        await page.fill("input[name=token]", TOKEN)
        await page.click("form.login button")
        await page.wait_for_selector("#actions")
        await page.click("#action-cancel")
        await page.wait_for_selector("#done")
        assert "cancelled" in await page.locator("#done").inner_text()
        assert await waiting.status() == RunStatus.CANCELLED


async def test_a_hostile_payload_renders_as_text(engine: Engine, page: Any) -> None:
    hostile = await engine.start(ds.broken, ds.XSS, tags=[ds.XSS])
    await support.wait_for_status(hostile, "failed", timeout=30)
    async with ds.serve(dashboard_app(engine)) as base:
        for path in (f"/runs/{hostile.run_id}", "/runs"):
            await page.goto(f"{base}{path}")
            await page.wait_for_selector("main h1")
            assert await page.title() != "pwned"
            assert await page.locator("main script, main img").count() == 0
        assert ds.XSS in await page.locator("span.tag").first.inner_text()
        await page.goto(f"{base}/runs/{hostile.run_id}")
        assert ds.XSS in await page.locator("#input").inner_text()
        assert not page.dialogs
