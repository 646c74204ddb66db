"""The dashboard over HTTP (httpx on the ASGI app; a real uvicorn for the live stream):
every route, escaping, the read-only default, the token and the CSRF and Origin checks."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from durable import Engine, RunStatus
from durable.dashboard import dashboard_app
from tests.acceptance import dashboard_support as ds
from tests.acceptance import support

pytestmark = pytest.mark.anyio

WORKFLOWS = ds.WORKFLOWS
TOKEN = "test-token-0123456789"


def client(app: Any, base: str = "http://dash.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.fixture
async def runs(engine: Engine) -> AsyncIterator[dict[str, Any]]:
    """One finished run of each kind, a waiting one, and a parent with its child."""
    done = await engine.start(ds.order, 21, tags=["tenant:acme"], idempotency_key="order-21")
    failed = await engine.start(ds.broken, ds.XSS)
    waiting = await engine.start(ds.approval, "ship it")
    tree = await engine.start(ds.parent, 1)
    assert await done.result(timeout=30) == 42
    assert await tree.result(timeout=30) == 2
    with pytest.raises(Exception, match="cannot go on"):
        await failed.result(timeout=30)
    await support.wait_for_status(waiting, "waiting", timeout=30)
    return {"done": done.run_id, "failed": failed.run_id, "waiting": waiting.run_id,
           "parent": tree.run_id}  # fmt: skip


async def test_every_page_renders(engine: Engine, runs: dict[str, Any]) -> None:
    async with client(dashboard_app(engine)) as http:
        for path in ("/", "/runs", f"/runs/{runs['done']}", "/workflows", "/schedules",
                     "/queues", "/static/dashboard.css", "/static/dashboard.js"):  # fmt: skip
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text[:500])
        page = (await http.get("/")).text
        assert 'id="throughput"' in page  # the SVG chart
        assert "content-security-policy" in (await http.get("/runs")).headers
        assert (await http.get("/runs/not-a-run")).status_code == 404
        assert (await http.get(f"/runs/{runs['done']}x")).status_code == 404
        workflows = (await http.get("/workflows")).text
        assert "dash.order" in workflows
        assert "dash.approval" in workflows
        assert engine.runtime.worker_id in workflows  # the live worker serving them
        queues = (await http.get("/queues")).text
        assert "default" in queues


async def test_runs_filters_search_and_paging(engine: Engine, runs: dict[str, Any]) -> None:
    async with client(dashboard_app(engine)) as http:

        async def shown(query: str) -> str:
            response = await http.get(f"/runs?{query}")
            assert response.status_code == 200, response.text[:500]
            return response.text

        failed_only = await shown("status=failed")
        assert str(runs["failed"]) in failed_only
        assert str(runs["done"]) not in failed_only
        by_workflow = await shown("workflow=dash.approval")
        assert str(runs["waiting"]) in by_workflow
        assert str(runs["done"]) not in by_workflow
        assert "signal:approve" in by_workflow  # the waiting-for column
        assert str(runs["done"]) in await shown("tag=tenant:acme")
        assert str(runs["done"]) in await shown("q=order-21")  # idempotency key
        prefix = str(runs["failed"])[:6]
        assert str(runs["failed"]) in await shown(f"q={prefix}")
        assert str(runs["done"]) in await shown("since=1h")
        assert "No runs match" in await shown("until=2000-01-01T00:00")
        bad = await http.get("/runs?since=yesterday-ish")
        assert bad.status_code == 400
        assert 'id="problem"' in bad.text
        assert (await http.get("/runs?status=bogus")).status_code == 400

    small = dashboard_app(engine)
    small.state.dashboard.page_size = 2
    async with client(small) as http:
        first = (await http.get("/runs")).text
        assert 'id="next-page"' in first
        found = re.search(r'href="([^"]+)" id="next-page"', first)
        assert found is not None
        second = (await http.get(html.unescape(found.group(1)))).text
        ids = lambda text: {line.split('"')[1] for line in text.split("data-run=")[1:]}  # noqa: E731
        assert ids(first).isdisjoint(ids(second))
        assert len(ids(second)) >= 1


async def test_run_detail_shows_the_whole_story(
    engine: Engine, runs: dict[str, Any], database_url: str
) -> None:
    app = dashboard_app(engine, trace_url_template="https://tempo.example/trace/{trace_id}")
    async with client(app) as http:
        done = (await http.get(f"/runs/{runs['done']}")).text
        assert "step:wobbly#0" in done
        assert "(retried)" in done
        assert "progress" in done
        assert "&#34;done&#34;: 42" in done
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        await support.fetch_row(
            database_url, "UPDATE durable.runs SET traceparent = $2 WHERE id = $1",
            runs["done"], f"00-{trace}-00f067aa0ba902b7-01",
        )  # fmt: skip
        traced = (await http.get(f"/runs/{runs['done']}")).text
        assert f'href="https://tempo.example/trace/{trace}"' in traced
        failed = (await http.get(f"/runs/{runs['failed']}")).text
        assert 'id="run-error"' in failed
        assert "NonRetryableError" in failed
        assert "Traceback" in failed
        tree = (await http.get(f"/runs/{runs['parent']}")).text
        assert 'id="children"' in tree
        child = (await engine.list_runs(parent=runs["parent"])).items[0]
        assert str(child.run_id)[:8] in tree
        assert f"/runs/{child.run_id}" in tree.split('id="timeline"')[1]  # the call links it
        child_page = (await http.get(f"/runs/{child.run_id}")).text
        assert f"/runs/{runs['parent']}" in child_page  # the parent link
        await engine.signal(runs["waiting"], "approve", "yes")
        assert await engine.handle(runs["waiting"]).result(timeout=30) == "ship it: yes"
        signalled = (await http.get(f"/runs/{runs['waiting']}")).text
        assert 'id="signals"' in signalled
        assert "signal:approve#0" in signalled


async def test_the_timeline_draws_every_attempt_with_its_error(engine: Engine) -> None:
    handle = await engine.start(ds.flaky, 5)
    assert await handle.result(timeout=30) == 5
    async with client(dashboard_app(engine)) as http:
        page = (await http.get(f"/runs/{handle.run_id}")).text
    timeline = page.split('id="timeline"')[1]
    # One bar per attempt, oldest first, each with its error on hover, and the list below.
    assert [int(n) for n in re.findall(r'data-attempt="(\d+)"', timeline)] == [1, 2, 3]
    assert "3 attempts" in timeline
    first = timeline.index("first outage")
    assert first < timeline.index("second outage")
    assert "(retried)" in timeline
    # The first error carries markup: shown escaped, never as a tag.
    assert ds.XSS not in page
    assert "first outage &lt;script&gt;document.title=" in page


async def test_payloads_render_as_text(engine: Engine, runs: dict[str, Any]) -> None:
    async with client(dashboard_app(engine)) as http:
        for path in (f"/runs/{runs['failed']}", "/runs?status=failed"):
            page = (await http.get(path)).text
            assert "<script>document" not in page
            assert "<img src=x" not in page
        page = (await http.get(f"/runs/{runs['failed']}")).text
        assert "&lt;script&gt;document.title=" in page
        searched = (await http.get("/runs", params={"q": ds.XSS})).text
        assert "<script>document" not in searched


async def test_read_only_by_default(engine: Engine, runs: dict[str, Any]) -> None:
    async with client(dashboard_app(engine)) as http:
        page = await http.get(f"/runs/{runs['waiting']}")
        assert 'id="actions"' not in page.text
        assert "read-only" in page.text
        csrf = http.cookies["durable_csrf"]  # no form to read it from: nothing to act with
        refused = await http.post(
            f"/runs/{runs['waiting']}/cancel",
            data={"csrf": csrf},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert refused.status_code == 403
        assert "read-only" in refused.text
        assert (await http.post("/login", data={"csrf": csrf, "token": TOKEN})).status_code == 403
    assert await engine.handle(runs["waiting"]).status() == RunStatus.WAITING


async def test_actions_need_token_csrf_and_same_origin(
    engine: Engine, runs: dict[str, Any]
) -> None:
    target = f"/runs/{runs['waiting']}/cancel"
    async with client(dashboard_app(engine, allow_actions=True, token=TOKEN)) as http:
        page = await http.get(f"/runs/{runs['waiting']}")
        assert 'id="sign-in-hint"' in page.text
        csrf = ds.csrf_of(page.text)
        assert (await http.post(target, data={"csrf": csrf})).status_code == 401
        bearer = {"authorization": f"Bearer {TOKEN}"}
        wrong = {"authorization": "Bearer not-the-token"}
        assert (await http.post(target, data={"csrf": csrf}, headers=wrong)).status_code == 401
        no_csrf = await http.post(target, data={}, headers=bearer)
        assert no_csrf.status_code == 403
        assert "CSRF" in no_csrf.text
        forged = await http.post(target, data={"csrf": "x" * 43}, headers=bearer)
        assert forged.status_code == 403
        elsewhere = {**bearer, "origin": "https://evil.example"}
        assert (await http.post(target, data={"csrf": csrf}, headers=elsewhere)).status_code == 403
        assert await engine.handle(runs["waiting"]).status() == RunStatus.WAITING

        bad_login = await http.post("/login", data={"csrf": csrf, "token": "guess"})
        assert bad_login.status_code == 401
        login = await http.post("/login", data={"csrf": csrf, "token": TOKEN, "next": "/runs"})
        assert login.status_code == 303
        assert "durable_token" in login.headers["set-cookie"]
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        signed_in = (await http.get(f"/runs/{runs['waiting']}")).text
        assert 'id="actions"' in signed_in
        done = await http.post(target, data={"csrf": csrf}, headers={"origin": "http://dash.test"})
        assert done.status_code == 303, done.text[:500]
        assert "cancelled" in (await http.get(done.headers["location"])).text
    assert await engine.handle(runs["waiting"]).status() == RunStatus.CANCELLED


async def test_every_action_calls_the_engine(engine: Engine, runs: dict[str, Any]) -> None:
    app = dashboard_app(engine, allow_actions=True, token=TOKEN)
    async with client(app) as http:
        csrf = ds.csrf_of((await http.get("/")).text)
        auth = {"authorization": f"Bearer {TOKEN}"}

        async def act(run_id: Any, action: str, **form: str) -> httpx.Response:
            return await http.post(f"/runs/{run_id}/{action}", data={"csrf": csrf, **form},
                                   headers=auth)  # fmt: skip

        waiting = runs["waiting"]
        assert (await act(waiting, "signal", name="approve", payload="bad json")).status_code == 400
        forwarded = await act(waiting, "fast-forward", payload='"ok"')
        assert "signalled" in forwarded.headers["location"], forwarded.headers["location"]
        assert await engine.handle(waiting).result(timeout=30) == "ship it: ok"
        retried = await act(runs["failed"], "retry")
        assert retried.status_code == 303
        assert "retry" in retried.headers["location"]
        forked = await act(runs["done"], "fork", from_step="step:wobbly#0")
        assert forked.status_code == 303
        new_id = forked.headers["location"].rsplit("/", 1)[1]
        assert new_id != str(runs["done"])
        assert await engine.handle(new_id).result(timeout=30) == 42

        fresh = await engine.start(ds.approval, "again")
        await support.wait_for_status(fresh, "waiting", timeout=30)
        assert (await act(fresh.run_id, "pause")).status_code == 303
        assert await fresh.status() == RunStatus.PAUSED
        assert (await act(fresh.run_id, "resume")).status_code == 303
        assert await fresh.status() != RunStatus.PAUSED
        assert (await act(fresh.run_id, "signal", name="approve", payload='"y"')).status_code == 303
        assert await fresh.result(timeout=30) == "again: y"
        assert (await act(runs["done"], "explode")).status_code == 404
        assert (await act(runs["done"], "fork", from_step="step:nope#9")).status_code == 409

        await engine.schedules.create("nightly", ds.leaf, "0 2 * * *", args=[1])
        paused = await http.post("/schedules/nightly/pause", data={"csrf": csrf}, headers=auth)
        assert paused.status_code == 303
        assert (await engine.schedules.get("nightly")).paused
        listing = (await http.get("/schedules", headers=auth)).text
        assert "nightly" in listing
        assert "Resume" in listing
        await http.post("/schedules/nightly/resume", data={"csrf": csrf}, headers=auth)
        assert not (await engine.schedules.get("nightly")).paused
        missing = await http.post("/schedules/nope/pause", data={"csrf": csrf}, headers=auth)
        assert missing.status_code == 409


async def test_mounted_links_stay_under_the_mount(engine: Engine, runs: dict[str, Any]) -> None:
    outer = Starlette(routes=[Mount("/ops/durable", dashboard_app(engine))])
    async with client(outer) as http:
        cookie = (await http.get("/ops/durable/")).headers["set-cookie"]
        assert "Path=/ops/durable/" in cookie
        assert "samesite=strict" in cookie.lower()
        page = (await http.get("/ops/durable/runs")).text
        assert 'href="http://dash.test/ops/durable/static/dashboard.css"' in page
        assert f"/ops/durable/runs/{runs['done']}" in page
        assert (await http.get("/ops/durable/static/dashboard.js")).status_code == 200


async def test_live_stream_says_change_when_a_run_finishes(engine: Engine) -> None:
    app = dashboard_app(engine, debounce=0.05)
    async with ds.serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        run_page = await engine.start(ds.approval, "live")
        await support.wait_for_status(run_page, "waiting", timeout=30)
        async with (
            http.stream("GET", "/live") as every,
            http.stream("GET", f"/live?run={run_page.run_id}") as one,
        ):
            assert every.headers["content-type"].startswith("text/event-stream")
            lines, mine = every.aiter_lines(), one.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            assert (await anext(mine)).startswith("retry:")
            await engine.signal(run_page.run_id, "approve", "now")
            with anyio.fail_after(30):
                while (await anext(lines)) != "event: change":
                    pass
                while (await anext(mine)) != "event: change":
                    pass
        assert (await http.get("/live?run=nope")).status_code == 400


async def test_allowed_hosts_refuse_a_rebound_name(engine: Engine) -> None:
    app = dashboard_app(engine, allowed_hosts=["127.0.0.1", "localhost"])
    async with client(app, "http://127.0.0.1:8484") as http:
        assert (await http.get("/runs")).status_code == 200
        rebound = await http.get("/runs", headers={"host": "attacker.example"})
        assert rebound.status_code == 400
