"""The read-only pages: overview, runs, a run, workflows, schedules, queues, and the live
stream that refreshes them."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from durable._foundation.durations import to_seconds
from durable._foundation.views import RunStatus
from durable._store.replicas import replica_settled
from durable._store.run_lookup import find_runs, run_waits
from durable.dashboard import _format, _queries
from durable.dashboard._base import SECURITY_HEADERS, config_of, problem, render
from durable.dashboard._live import stream
from durable.errors import RunNotFound

__all__ = ["ROUTES", "live"]

WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
SLOTS = 30


async def overview(request: Request) -> Response:
    config = config_of(request)
    store = config.backend.runtime.reads
    window = request.query_params.get("window", "24h")
    seconds = WINDOWS.get(window, WINDOWS["24h"])
    now = await store.db_now()
    since = now - timedelta(seconds=seconds)
    buckets = await _queries.throughput(store, since, seconds / SLOTS)
    return render(
        request,
        "overview.html",
        {
            "now": now,
            "window": window,
            "windows": list(WINDOWS),
            "chart": _format.chart(buckets, since, now, SLOTS),
            "stuck": await _queries.stuck_runs(store, config.stuck_after),
            "stuck_after": config.stuck_after,
            "workers": await _queries.workers(store),
        },
    )


def _moment(text: str, now: datetime) -> datetime:
    """An ISO time (naive: UTC) or an age such as ``1h`` (that long ago)."""
    try:
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    except ValueError:
        return now - timedelta(seconds=to_seconds(text))


def _filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    statuses = [s for s in params.getlist("status") if s]
    return {
        "workflow": params.get("workflow") or None,
        "status": statuses,
        "tag": params.get("tag") or None,
        "queue": params.get("queue") or None,
        "since": params.get("since") or None,
        "until": params.get("until") or None,
        "q": (params.get("q") or "").strip() or None,
    }


async def runs(request: Request) -> Response:
    config = config_of(request)
    backend, store = config.backend, config.backend.runtime.reads
    chosen = _filters(request)
    cursor = request.query_params.get("cursor") or None
    now = await store.db_now()
    context: dict[str, Any] = {
        "filters": chosen,
        "statuses": [s.value for s in RunStatus],
        "now": now,
        "workflow_names": await _queries.workflow_names(store),
        "next_url": None,
        "error": None,
        "items": [],
        "waits": {},
        "live_url": str(request.url_for("live")),
        "paged": cursor is not None,
    }
    try:
        for status in chosen["status"]:
            RunStatus(status)
        if chosen["q"]:
            context["items"] = await find_runs(store, chosen["q"], limit=config.page_size)
        else:
            page = await backend.list_runs(
                workflow=chosen["workflow"],
                status=chosen["status"] or None,
                tag=chosen["tag"],
                queue=chosen["queue"],
                since=_moment(chosen["since"], now) if chosen["since"] else None,
                until=_moment(chosen["until"], now) if chosen["until"] else None,
                limit=config.page_size,
                cursor=cursor,
            )
            context["items"] = page.items
            if page.next_cursor:
                context["next_url"] = _page_url(request, chosen, page.next_cursor)
    except ValueError as exc:
        context["error"] = str(exc)
        return render(request, "runs.html", context, 400)
    context["waits"] = await run_waits(store, [r.run_id for r in context["items"]])
    return render(request, "runs.html", context)


def _page_url(request: Request, chosen: dict[str, Any], cursor: str) -> str:
    pairs = [(k, v) for k, v in chosen.items() if v and k != "status"]
    pairs += [("status", s) for s in chosen["status"]] + [("cursor", cursor)]
    return f"{request.url_for('runs')}?{urlencode(pairs)}"


async def run(request: Request) -> Response:
    config = config_of(request)
    backend, store = config.backend, config.backend.runtime.reads
    try:
        run_id = UUID(request.path_params["run_id"])
        detail = await backend.get_run(run_id)
    except (ValueError, RunNotFound):
        return problem(request, 404, f"No run with id {request.path_params['run_id']}.")
    waits = (await run_waits(store, [run_id])).get(run_id)
    children = (await backend.list_runs(parent=run_id, limit=200)).items
    return render(
        request,
        "run.html",
        {
            "run": detail,
            "waits": waits,
            "children": children,
            "signals": await _queries.run_signals(store, run_id),
            "timeline": _format.waterfall(
                run_id, detail.steps, detail.started_at, detail.finished_at
            ),
            "trace_url": _format.trace_url(
                config.trace_url_template, waits.trace_id if waits else None
            ),
            "live_url": f"{request.url_for('live')}?run={run_id}",
            "done": request.query_params.get("done"),
            "now": waits.now if waits else datetime.now(UTC),
        },
    )


async def workflows(request: Request) -> Response:
    store = config_of(request).backend.runtime.reads
    return render(
        request,
        "workflows.html",
        {
            "workflows": await _queries.workflows(store),
            "workers": await _queries.workers(store),
            "statuses": [s.value for s in RunStatus],
            "now": await store.db_now(),
        },
    )


async def schedules(request: Request) -> Response:
    config = config_of(request)
    items = await config.backend.schedules.list()
    now = await config.backend.runtime.reads.db_now()
    return render(
        request,
        "schedules.html",
        {"schedules": items, "now": now, "done": request.query_params.get("done")},
    )


async def queues(request: Request) -> Response:
    store = config_of(request).backend.runtime.reads
    return render(request, "queues.html", {"queues": await _queries.queues(store)})


async def live(request: Request) -> Response:
    """Server-sent ``change`` events for one page (``?run=ID``: that run's page)."""
    config = config_of(request)
    runtime = config.backend.runtime
    target = request.query_params.get("run")
    try:
        run_id = UUID(target) if target else None
    except ValueError:
        return problem(request, 400, "run= must be a run id")
    signal = config.feed.subscribe(runtime.listener, run_id)
    if run_id is not None:
        # Step records notify only for runs someone watches (handle.wait does the same).
        # A read-only database role cannot set that flag: status changes still arrive.
        with contextlib.suppress(asyncpg.PostgresError):
            # Counted in and never out (the stream's end is not seen here): the watch
            # lapses on its own after _PAGE_WATCH_SECONDS.
            await runtime.store.watch_progress(run_id, 1, _PAGE_WATCH_SECONDS)
    headers = {**SECURITY_HEADERS, "x-accel-buffering": "no"}
    return StreamingResponse(
        stream(
            signal,
            config.debounce,
            settle=lambda: replica_settled(runtime.store.pool, runtime.reads.pool),
        ),
        media_type="text/event-stream",
        headers=headers,
    )


_PAGE_WATCH_SECONDS = 600.0

ROUTES = [
    Route("/", overview, name="overview"),
    Route("/runs", runs, name="runs"),
    Route("/runs/{run_id}", run, name="run"),
    Route("/workflows", workflows, name="workflows"),
    Route("/schedules", schedules, name="schedules"),
    Route("/queues", queues, name="queues"),
]
