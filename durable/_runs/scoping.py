"""Resource scoping and run metadata: the checks behind ``start(resource_id=, metadata=)``
and the ``resource_id=`` of reads and actions.

A run's resource (a tenant, a user, an account) is fixed when it starts. A call scoped to
a resource treats a run of any other resource exactly like a run that does not exist, so
one tenant can neither read, signal nor cancel another's runs, nor learn that they exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from durable._foundation.codec import encode_plain, to_json
from durable._foundation.limits import check_payload, check_text
from durable.errors import RunNotFound

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_RESOURCE_ID",
    "check_resource_id",
    "encode_metadata",
    "in_resource",
    "require_in_resource",
]

MAX_RESOURCE_ID = 200
"""Characters a resource id may hold."""
MAX_METADATA_BYTES = 4096
"""Encoded size a run's metadata may take: labels, not payloads."""


def check_resource_id(resource_id: str | None) -> str | None:
    """A resource id as given, or a clear error (a non-empty string of 200 characters
    at most that Postgres can store)."""
    if resource_id is None:
        return None
    if not isinstance(resource_id, str):
        raise TypeError(f"resource_id must be a string, not {resource_id!r}")
    if not resource_id or len(resource_id) > MAX_RESOURCE_ID:
        raise ValueError(
            f"resource_id must hold 1 to {MAX_RESOURCE_ID} characters, not {len(resource_id)}"
        )
    return check_text("the resource_id", resource_id)


def encode_metadata(metadata: Mapping[str, Any] | None) -> str | None:
    """The JSON text of a run's metadata: a mapping with string keys, plain JSON values,
    at most ``MAX_METADATA_BYTES`` encoded (``PayloadTooLarge`` beyond)."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of strings to JSON values, not {metadata!r}")
    for key in metadata:
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be strings, got {key!r}")
    encoded = to_json(encode_plain(dict(metadata), "the run metadata"), "the run metadata")
    check_payload("the run metadata", encoded, MAX_METADATA_BYTES)
    return encoded


async def in_resource(runtime: Runtime, run_id: UUID, resource_id: str | None) -> bool:
    """True when the run exists and, if ``resource_id`` is given, belongs to it."""
    exists, owner = await runtime.store.run_resource(run_id)
    return exists and (resource_id is None or owner == resource_id)


async def require_in_resource(runtime: Runtime, run_id: UUID, resource_id: str | None) -> None:
    """``RunNotFound`` for a run of another resource (nothing checked without a scope)."""
    if resource_id is not None and not await in_resource(runtime, run_id, resource_id):
        raise RunNotFound(run_id)
