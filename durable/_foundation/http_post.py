"""One HTTP/1.1 POST over asyncio streams, for webhook deliveries.

Deliberately small: one request per connection (``Connection: close``), TLS for https,
the whole exchange bounded by one timeout, no redirects (a receiver answers 2xx to accept).
Only the status code is read back. Errors never carry the URL (it may hold a token) or
the headers (they hold the signature).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import anyio

__all__ = ["DeliveryError", "post_json"]

_MAX_HEADER_LINES = 200


class DeliveryError(Exception):
    """The request could not be made or answered (connection, TLS, timeout, bad reply)."""


async def post_json(url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
    """POST ``body`` as JSON to ``url`` with ``headers``; the response's status code."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "User-Agent: durable-webhooks",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    try:
        with anyio.fail_after(timeout):
            return await _exchange(host, port, secure, request)
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g}s") from None
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        raise DeliveryError(f"request failed ({type(exc).__name__})") from None


async def _exchange(host: str, port: int, secure: bool, request: bytes) -> int:
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        status = _status(status_line)
        for _ in range(_MAX_HEADER_LINES):  # read the headers: the reply is complete enough
            if (await reader.readline()) in (b"\r\n", b"\n", b""):
                break
        return status
    finally:
        writer.close()
        with anyio.move_on_after(1):
            await writer.wait_closed()


def _status(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise DeliveryError("the reply is not HTTP")
    return int(parts[1])
