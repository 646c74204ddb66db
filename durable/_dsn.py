"""Connection-string helpers shared by the test harness and the command line."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["dsn_for_database", "redact"]


def dsn_for_database(server_dsn: str, database: str) -> str:
    """``server_dsn`` pointed at ``database``; works for TCP and unix-socket (``?host=``) URLs."""
    parts = urlsplit(server_dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"expected a postgresql:// URL, got {redact(server_dsn)!r}")
    # A dbname in the query string would override the path, so drop it.
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in pairs if key not in ("dbname", "database")]
    return urlunsplit(parts._replace(path=f"/{database}", query=urlencode(query)))


def redact(dsn: str) -> str:
    """The DSN with its password replaced, safe to print or log."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
