"""Checks at the boundary, before any statement, so the database stays as it was.

Payload caps: encoded inputs, results and signal payloads over their limit raise
``PayloadTooLarge``. Texts: a name, tag or key that no Postgres ``text`` can hold raises
``ValueError`` (values go through the codec, which refuses the same characters).
"""

from __future__ import annotations

from durable.errors import PayloadTooLarge

__all__ = ["check_payload", "check_text", "unstorable_text"]


def check_payload(what: str, encoded: str | None, limit: int) -> None:
    """Raise ``PayloadTooLarge`` when ``encoded`` (UTF-8) is over ``limit`` bytes."""
    if encoded is None:
        return
    # Cheap bound first: UTF-8 takes at most 4 bytes per character.
    if len(encoded) * 4 <= limit:
        return
    size = len(encoded.encode("utf-8"))
    if size > limit:
        raise PayloadTooLarge(what, size, limit)


def unstorable_text(text: str) -> str | None:
    """Why Postgres cannot store ``text`` (a NUL, or a lone surrogate), or None."""
    if "\x00" in text:
        return "a NUL character (\\x00)"
    if text.isascii():  # the common case, checked in C without copying
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate ({text[exc.start]!r}) that UTF-8 cannot encode"
    return None


def check_text(what: str, text: str | None) -> str | None:
    """Return ``text`` (a name, tag or key given by the caller) when Postgres can store it;
    raise ``ValueError`` naming ``what`` otherwise."""
    if text is not None:
        problem = unstorable_text(text)
        if problem is not None:
            raise ValueError(f"Postgres cannot store {what} {text!r}: it contains {problem}")
    return text
