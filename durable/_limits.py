"""Payload caps: encoded inputs, results and signal payloads are checked at the boundary.

The check runs on the JSON text about to be written, before any statement, so an
oversized value raises ``PayloadTooLarge`` and the database stays as it was.
"""

from __future__ import annotations

from durable.errors import PayloadTooLarge

__all__ = ["check_payload"]


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
