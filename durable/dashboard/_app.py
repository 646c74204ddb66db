"""The Starlette application: the dashboard's routes, mounted anywhere."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from durable.dashboard import _actions, _pages, _security
from durable.dashboard._base import HERE, DashboardBackend, DashboardConfig, problem

__all__ = ["dashboard_app"]


def dashboard_app(
    engine: DashboardBackend,
    *,
    allow_actions: bool = False,
    token: str | None = None,
    trace_url_template: str | None = None,
    debounce: float = 0.5,
    stuck_after: float = 60.0,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The dashboard as an ASGI app reading ``engine`` (entered by the time it serves).

    Mount it anywhere: ``app.mount("/durable", dashboard_app(engine))``; every link is
    built relative to the mount. Read-only unless ``allow_actions``; actions then need
    ``token`` (a new random one when None: read it from ``app.state.dashboard.token``).
    ``trace_url_template`` links a run's trace, e.g. ``https://tempo/trace/{trace_id}``.
    ``allowed_hosts`` refuses requests for any other ``Host`` (``durable dashboard`` on
    127.0.0.1 allows only local names, so a DNS-rebinding page cannot read it).
    """
    if allow_actions and token is None:
        token = _security.new_token()
    config = DashboardConfig(
        backend=engine,
        allow_actions=allow_actions,
        token=token,
        trace_url_template=trace_url_template,
        debounce=debounce,
        stuck_after=stuck_after,
    )
    routes = [
        *_pages.ROUTES,
        *_actions.ROUTES,
        Route("/live", _pages.live, name="live"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: _not_found})
    app.state.dashboard = config
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    if "app" not in request.scope or not hasattr(request.app.state, "dashboard"):
        return HTMLResponse("not found", 404)
    return problem(request, 404, "There is nothing at this address.")
