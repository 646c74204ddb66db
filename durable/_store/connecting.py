"""Opening connections from a URL that may name several servers.

``postgresql://h1:5432,h2:5433/db`` (or ``?host=h1,h2&port=5432,5433``) lists a primary and
its standbys; asyncpg tries them in order and keeps the first that matches
``target_session_attrs``. durable writes on every connection of its main URL, so when such
a URL sets no ``target_session_attrs`` (nor ``PGTARGETSESSIONATTRS``) it asks for
``read-write``: after a failover, a new connection skips the old primary (down) and any
standby, and lands on the promoted server. A URL naming one host is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from asyncpg.connect_utils import SessionAttribute

__all__ = ["Connect", "connector", "hosts_of"]

Connect = Callable[[], Awaitable[asyncpg.Connection]]
_ATTRS = "target_session_attrs"
_ATTRS_ENV = "PGTARGETSESSIONATTRS"


def hosts_of(url: str) -> list[str]:
    """The hosts a connection URL names, in the order they are tried (``[]`` for none)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if query.get("host"):
        return query["host"].split(",")
    netloc = parts.netloc.rpartition("@")[2]
    return [host for host in netloc.split(",") if host] if netloc else []


def connector(url: str, *, writes: bool = True) -> Connect:
    """A function that opens a new connection to ``url``. With ``writes`` (the main URL),
    a multi-host URL that does not say otherwise picks a server that accepts writes."""
    attrs = SessionAttribute.read_write if writes and _needs_writable_default(url) else None

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, target_session_attrs=attrs)

    return connect


def _needs_writable_default(url: str) -> bool:
    try:
        if len(hosts_of(url)) < 2 or os.environ.get(_ATTRS_ENV):
            return False
        return _ATTRS not in dict(parse_qsl(urlsplit(url).query))
    except ValueError:  # a malformed URL: asyncpg says what is wrong with it
        return False
