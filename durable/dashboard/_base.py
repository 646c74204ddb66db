"""What every dashboard page and action shares: configuration, the backend it reads,
rendering and problem responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from durable._client.handles import RunHandle
from durable._client.management import ForwardResult, RetryResult
from durable._client.schedules import Schedules
from durable._foundation.durations import format_duration as duration
from durable._foundation.views import Page, RunDetail, RunSummary
from durable._runs.deliveries import SignalDelivery
from durable._runs.runtime import Runtime
from durable.dashboard import _format, _security
from durable.dashboard._live import ChangeFeed

__all__ = [
    "HERE",
    "SECURITY_HEADERS",
    "DashboardBackend",
    "DashboardConfig",
    "config_of",
    "problem",
    "render",
]

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # Everything the pages load is served by the dashboard itself; no inline script or style.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class DashboardBackend(Protocol):
    """What the dashboard uses of an ``Engine`` (or, later, a ``Client``)."""

    @property
    def runtime(self) -> Runtime: ...
    @property
    def schedules(self) -> Schedules: ...
    async def get_run(self, run_id: UUID | str) -> RunDetail: ...
    async def list_runs(
        self,
        workflow: str | None = None,
        status: Sequence[str] | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        parent: UUID | str | None = None,
        queue: str | None = None,
    ) -> Page[RunSummary]: ...
    async def cancel(self, run_id: UUID | str) -> bool: ...
    async def retry(self, run_id: UUID | str) -> RetryResult: ...
    async def pause(self, run_id: UUID | str) -> bool: ...
    async def resume(self, run_id: UUID | str) -> bool: ...
    async def fork(self, run_id: UUID | str, from_step: str | None = None) -> RunHandle[Any]: ...
    async def fast_forward(
        self, run_id: UUID | str, payload: Any = None, *, signal: str | None = None
    ) -> ForwardResult: ...
    async def signal(
        self,
        run_id: UUID | str,
        name: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> SignalDelivery: ...


@dataclass(slots=True)
class DashboardConfig:
    """How one dashboard behaves; kept on ``app.state.dashboard``."""

    backend: DashboardBackend
    allow_actions: bool = False
    token: str | None = None
    trace_url_template: str | None = None
    debounce: float = 0.5
    """Seconds a live page waits after telling the browser to refresh."""
    stuck_after: float = 60.0
    """Seconds a due run may wait unclaimed before the overview lists it as stuck."""
    page_size: int = 50
    feed: ChangeFeed = field(default_factory=ChangeFeed)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _format.when
    env.filters["duration"] = duration
    env.filters["pretty_json"] = _format.pretty_json
    return Jinja2Templates(env=env)


TEMPLATES = _templates()


def config_of(request: Request) -> DashboardConfig:
    """The configuration of the dashboard serving ``request``."""
    config: DashboardConfig = request.app.state.dashboard
    return config


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A page, with what every page needs: action rights, CSRF token, security headers."""
    config = config_of(request)
    signed_in = _security.has_token(request, config.token)
    common = {
        "allow_actions": config.allow_actions,
        "signed_in": signed_in,
        "can_act": config.allow_actions and signed_in,
        "csrf": _security.csrf_token(request),
        "csrf_field": _security.CSRF_FIELD,
        "page": template.removesuffix(".html"),
    }
    response: Response = TEMPLATES.TemplateResponse(
        request,
        template,
        {**common, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    _security.set_csrf_cookie(request, response)
    return response


def problem(request: Request, status_code: int, message: str) -> Response:
    """An error page (the message is escaped like everything else)."""
    return render(request, "error.html", {"message": message}, status_code)
