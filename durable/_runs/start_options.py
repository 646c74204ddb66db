"""Start options checked where they are given: the values ``wf.options(...)`` binds.

Each option is validated with the checks ``client.start`` applies, so a bad value fails
when the options are made, before any run exists; the workflow side turns them into a
run's start (``durable/_workflow/start_options.py``) or a child's (``children.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from durable._foundation.validate import (
    check_delay,
    check_name,
    check_optional_key,
    check_priority,
    check_run_id,
    check_tags,
    seconds_or_none,
)
from durable._runs.scoping import check_resource_id, encode_metadata

__all__ = ["NO_OPTIONS", "StartOptions", "check_options", "merged"]

Duration = float | int | timedelta | str


@dataclass(frozen=True, slots=True)
class StartOptions:
    """Checked start options; None means "not set" (the workflow's or engine's default)."""

    idempotency_key: str | None = None
    tags: tuple[str, ...] | None = None
    delay: float | None = None
    queue: str | None = None
    priority: int | None = None
    concurrency_key: str | None = None
    timeout: float | None = None
    resource_id: str | None = None
    metadata_json: str | None = None
    run_id: UUID | None = None

    def given(self) -> tuple[str, ...]:
        """The names of the options that are set."""
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None)


def check_options(
    *,
    idempotency_key: str | None = None,
    tags: Sequence[str] | None = None,
    delay: Duration | None = None,
    queue: str | None = None,
    priority: int | None = None,
    concurrency_key: str | None = None,
    timeout: Duration | None = None,
    resource_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: UUID | None = None,
) -> StartOptions:
    """The given options, each checked as ``engine.start`` checks it (a clear error if bad)."""
    return StartOptions(
        idempotency_key=check_optional_key("idempotency_key", idempotency_key),
        tags=None if tags is None else tuple(check_tags(tags)),
        delay=check_delay(delay),
        queue=None if queue is None else check_name("queue", queue),
        priority=None if priority is None else check_priority(priority),
        concurrency_key=check_optional_key("concurrency_key", concurrency_key),
        timeout=seconds_or_none("timeout", timeout),
        resource_id=check_resource_id(resource_id),
        metadata_json=encode_metadata(metadata),
        run_id=None if run_id is None else check_run_id("run_id", run_id),
    )


def merged(earlier: StartOptions, later: StartOptions) -> StartOptions:
    """``earlier`` with the options ``later`` sets put over it."""
    return dataclasses.replace(earlier, **{name: getattr(later, name) for name in later.given()})


NO_OPTIONS = StartOptions()
"""No option set: the workflow's and the engine's defaults."""
