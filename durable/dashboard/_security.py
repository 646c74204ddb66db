"""Who may act, and proof that a form post came from the dashboard's own page.

- Actions need the operator token: a ``Bearer`` header, or the HttpOnly cookie that
  signing in with the token sets. Compared in constant time.
- Every POST carries the per-browser CSRF token twice, in a ``SameSite=Strict`` cookie and
  in a hidden form field, and they must match; a present ``Origin`` must be this host.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "TOKEN_COOKIE",
    "cookie_path",
    "csrf_token",
    "has_token",
    "new_token",
    "same_origin",
    "set_csrf_cookie",
    "valid_csrf",
]

CSRF_COOKIE = "durable_csrf"
CSRF_FIELD = "csrf"
TOKEN_COOKIE = "durable_token"


def new_token() -> str:
    """A fresh random operator token."""
    return secrets.token_urlsafe(32)


def cookie_path(request: Request) -> str:
    """The mount point, so the cookies go only to the dashboard's own URLs."""
    root = str(request.scope.get("root_path") or "")
    return root.rstrip("/") + "/"


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (from its cookie), or a new one for set_csrf_cookie."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing
    token: str | None = getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Send the CSRF cookie when this request minted the token."""
    token = getattr(request.state, "new_csrf", None)
    if token is not None:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def valid_csrf(request: Request, submitted: str | None) -> bool:
    """The form's token equals the cookie's (both present)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def same_origin(request: Request) -> bool:
    """No ``Origin`` header (not a browser form), or one naming this very host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


def has_token(request: Request, token: str | None) -> bool:
    """The request carries the operator token (header or signed-in cookie)."""
    if token is None:
        return False
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else None
    given = given or request.cookies.get(TOKEN_COOKIE)
    if not given:
        return False
    return hmac.compare_digest(given.encode(), token.encode())
