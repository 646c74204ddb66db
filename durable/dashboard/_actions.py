"""The actions (POST only): sign in and out, act on a run, pause or resume a schedule.

Each is refused unless the dashboard was started with actions allowed, the request
carries the operator token, the form's CSRF token matches the cookie's and any
``Origin`` is this host. Each calls the engine's own method.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from durable.dashboard import _security
from durable.dashboard._base import DashboardConfig, config_of, problem
from durable.errors import DurableError

__all__ = ["ROUTES"]

RUN_ACTIONS = ("cancel", "retry", "pause", "resume", "fork", "fast-forward", "signal")
MAX_FORM_BYTES = 1 << 20
FormData = dict[str, str]


async def _form(request: Request) -> FormData:
    """The posted form (urlencoded, as the pages send it); empty for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def _guard(request: Request, need_token: bool = True) -> tuple[FormData, Response | None]:
    """The form, and the refusal to send instead of acting (None: go ahead)."""
    config = config_of(request)
    form = await _form(request)
    if not config.allow_actions:
        return form, problem(
            request,
            403,
            "This dashboard is read-only: start it with "
            "--allow-actions (dashboard_app(..., allow_actions=True)) to act.",
        )
    if not _security.same_origin(request):
        return form, problem(request, 403, "Refused: the form came from another site.")
    csrf = form.get(_security.CSRF_FIELD)
    if not _security.valid_csrf(request, csrf if isinstance(csrf, str) else None):
        return form, problem(
            request,
            403,
            "Refused: the form's CSRF token is missing or stale. Reload the page and try again.",
        )
    if need_token and not _security.has_token(request, config.token):
        return form, problem(request, 401, "Sign in with the dashboard token to act.")
    return form, None


def _back(request: Request, fallback: str, form: FormData) -> str:
    """Where to go after signing in: a path inside the dashboard only (never off-site)."""
    target = form.get("next", "")
    root = urlsplit(str(request.url_for("overview"))).path
    if target.startswith(root) and "//" not in target and "\\" not in target:
        return target
    return fallback


async def login(request: Request) -> Response:
    form, refusal = await _guard(request, need_token=False)
    if refusal is not None:
        return refusal
    config: DashboardConfig = config_of(request)
    given = form.get("token", "")
    if config.token is None or not hmac.compare_digest(given.encode(), config.token.encode()):
        return problem(request, 401, "That is not the dashboard token.")
    response = RedirectResponse(_back(request, str(request.url_for("overview")), form), 303)
    response.set_cookie(
        _security.TOKEN_COOKIE,
        given,
        path=_security.cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    _, refusal = await _guard(request, need_token=False)
    if refusal is not None:
        return refusal
    response = RedirectResponse(str(request.url_for("overview")), 303)
    response.delete_cookie(_security.TOKEN_COOKIE, path=_security.cookie_path(request))
    return response


def _payload(form: FormData) -> Any:
    text = form.get("payload")
    if not isinstance(text, str) or not text.strip():
        return None
    return json.loads(text)


async def run_action(request: Request) -> Response:
    form, refusal = await _guard(request)
    if refusal is not None:
        return refusal
    backend = config_of(request).backend
    action = request.path_params["action"]
    try:
        run_id = UUID(request.path_params["run_id"])
    except ValueError:
        return problem(request, 404, "No such run.")
    if action not in RUN_ACTIONS:
        return problem(request, 404, f"No action {action!r}.")
    try:
        outcome = await _act(backend, action, run_id, form)
    except json.JSONDecodeError as exc:
        return problem(request, 400, f"The payload must be JSON: {exc}.")
    except (DurableError, ValueError, LookupError) as exc:
        return problem(request, 409, f"{action} failed: {exc}")
    if isinstance(outcome, UUID):  # a fork: show the new run
        return RedirectResponse(str(request.url_for("run", run_id=str(outcome))), 303)
    url = request.url_for("run", run_id=str(run_id)).include_query_params(done=outcome)
    return RedirectResponse(str(url), 303)


async def _act(backend: Any, action: str, run_id: UUID, form: FormData) -> str | UUID:
    """Do ``action``; a short word for what happened, or a fork's new run id."""
    if action == "cancel":
        return "cancelled" if await backend.cancel(run_id) else "cancel: already finished"
    if action == "retry":
        return f"retry: {(await backend.retry(run_id)).kind}"
    if action in ("pause", "resume"):
        done = await getattr(backend, action)(run_id)
        return f"{action}d" if done else f"{action}: nothing to do"
    if action == "fork":
        step = form.get("from_step")
        handle = await backend.fork(
            run_id, from_step=step if isinstance(step, str) and step else None
        )
        new_id: UUID = handle.run_id
        return new_id
    if action == "fast-forward":
        return f"fast-forward: {(await backend.fast_forward(run_id, _payload(form))).kind}"
    name = form.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a signal needs a name")
    delivery = await backend.signal(run_id, name, _payload(form))
    return f"signal {name}: {delivery.kind}"


async def schedule_action(request: Request) -> Response:
    _, refusal = await _guard(request)
    if refusal is not None:
        return refusal
    schedules = config_of(request).backend.schedules
    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ("pause", "resume"):
        return problem(request, 404, f"No action {action!r}.")
    try:
        await (schedules.pause if action == "pause" else schedules.resume)(name)
    except (DurableError, ValueError, LookupError) as exc:
        return problem(request, 409, f"{action} failed: {exc}")
    url = request.url_for("schedules").include_query_params(done=f"{action}d {name}")
    return RedirectResponse(str(url), 303)


ROUTES = [
    Route("/login", login, methods=["POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/runs/{run_id}/{action}", run_action, methods=["POST"], name="run_action"),
    Route("/schedules/{name}/{action}", schedule_action, methods=["POST"], name="schedule_action"),
]
