"""Connection-string helpers shared by the test harness, the engine and the command line.

``redact`` and ``scrub`` are the only places that decide what of a connection string may be
printed: every message or log line that could carry a URL goes through them. They err on
the side of hiding too much: a malformed URL (a raw ``@``, ``/``, ``?`` or ``#`` in the
password) loses more than its password, never less.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["dsn_for_database", "redact", "scrub"]

MASK = "***"
_SECRET_KEYS = frozenset({"password", "sslpassword"})
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# key=value connection strings: a value is quoted ('...', with \' and \\ escapes) or bare.
_KEYWORD_SECRET = re.compile(
    r"\b(?P<key>(?:ssl)?password)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|[^\s'&]*)",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*")
_PIECE_SPLIT = re.compile(r"[/?#@:&=,;'\\\s]")
_MIN_PIECE = 3  # shorter fragments of a password are too common to mask in free text


def dsn_for_database(server_dsn: str, database: str) -> str:
    """``server_dsn`` pointed at ``database``; works for TCP and unix-socket (``?host=``) URLs."""
    parts = urlsplit(server_dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"expected a postgresql:// URL, got {redact(server_dsn)!r}")
    # A dbname in the query string would override the path, so drop it.
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in pairs if key not in ("dbname", "database")]
    # Commas stay readable: ``host=h1,h2&port=5432,5433`` lists the servers to try.
    return urlunsplit(parts._replace(path=f"/{database}", query=urlencode(query, safe=",")))


def redact(dsn: str) -> str:
    """``dsn`` (a URL or a ``key=value`` string) with every password masked, safe to print."""
    return _redacted(dsn)[0]


def scrub(text: str, *dsns: str | None) -> str:
    """``text`` (an error message, a log line) with the passwords of ``dsns`` masked, and
    those of any connection URL or ``password=`` pair it contains."""
    secrets: set[str] = set()
    for dsn in dsns:
        if dsn:
            secrets.update(_redacted(dsn)[1])
    text = _URL_IN_TEXT.sub(lambda m: _redacted(m.group())[0], text)
    text = _KEYWORD_SECRET.sub(_mask_keyword, text)
    # Drivers may echo a piece of a malformed URL ("invalid port 's3c'"): mask the
    # password and its pieces wherever they appear, longest first.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _redacted(dsn: str) -> tuple[str, set[str]]:
    """The masked form of ``dsn`` and the secret strings it held (raw and decoded)."""
    match = _URL_START.match(dsn.lstrip())
    if match is None:
        values = [m.group("value") for m in _KEYWORD_SECRET.finditer(dsn)]
        return _KEYWORD_SECRET.sub(_mask_keyword, dsn), _with_pieces(values)
    start = len(dsn) - len(dsn.lstrip()) + match.end()
    prefix, rest = dsn[:start], dsn[start:]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    head, tail = rest[:cut], rest[cut:]
    if "@" not in head and "@" in tail and not _well_formed_query(tail):
        head, tail = rest, ""  # a raw '?' or '#' inside the password
    found: list[str] = []
    at = head.rfind("@")
    if at >= 0:
        user, colon, password = head[:at].partition(":")
        if colon:
            found.append(password)
            head = f"{user}:{MASK}{head[at:]}"
    tail, in_query = _redact_query(tail)
    return prefix + head + tail, _with_pieces(found + in_query)


def _well_formed_query(tail: str) -> bool:
    if not tail.startswith("?"):
        return False
    query = tail[1:].partition("#")[0]
    return all("=" in field for field in query.split("&") if field)


def _redact_query(tail: str) -> tuple[str, list[str]]:
    if not tail.startswith("?"):
        return tail, []
    query, hash_mark, fragment = tail[1:].partition("#")
    fields, found = [], []
    for field in query.split("&"):
        key, eq, value = field.partition("=")
        if eq and unquote(key).strip().lower() in _SECRET_KEYS:
            found.append(value)
            fields.append(f"{key}={MASK}")
        else:
            fields.append(field)
    return "?" + "&".join(fields) + hash_mark + fragment, found


def _mask_keyword(match: re.Match[str]) -> str:
    return f"{match.group('key')}{match.group('eq')}{MASK}"


def _with_pieces(found: list[str]) -> set[str]:
    secrets: set[str] = set()
    for raw in found:
        for form in {raw, unquote(raw), raw.strip("'")}:
            if form:
                secrets.add(form)
                secrets.update(p for p in _PIECE_SPLIT.split(form) if len(p) >= _MIN_PIECE)
    return secrets
