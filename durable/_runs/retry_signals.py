"""``engine.retry(discard_signal=, replace_signal=)``: mend a run's recorded signal.

A run whose recorded signal payload its wait's type no longer accepts fails on every
replay, so a plain retry fails again. Dropping the record (the wait is armed again) or
recording a new payload in its place lets the retry go on; the old signal is kept,
marked rejected, for the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from durable._foundation.codec import encode_plain, to_json
from durable._foundation.limits import check_payload
from durable._runs.deliveries import check_signal_name

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime
    from durable._store.store import Store

__all__ = ["SignalFix", "signal_fix"]


@dataclass(frozen=True, slots=True)
class SignalFix:
    """Discard the latest recorded signal ``name`` or, with ``payload_json``, replace it."""

    name: str
    payload_json: str | None = None

    async def apply(self, store: Store, conn: asyncpg.Connection, run_id: UUID) -> None:
        """Change the record inside the retry's transaction; ValueError when there is none."""
        verb = "discard" if self.payload_json is None else "replace"
        row = await store.drop_signal_record(conn, run_id, self.name, f"{verb}d by engine.retry")
        if row is None:
            raise ValueError(f"run {run_id} has no recorded signal {self.name!r} to {verb}")
        if self.payload_json is not None:
            await store.replace_signal_record(
                conn, run_id, self.name, row["cursor_key"], row["seq"], self.payload_json
            )


def signal_fix(
    runtime: Runtime, discard: str | None, replace: tuple[str, Any] | None
) -> SignalFix | None:
    """The fix ``retry`` was asked for, checked before anything is touched."""
    if discard is not None and replace is not None:
        raise ValueError("pass discard_signal= or replace_signal=, not both")
    if discard is not None:
        return SignalFix(check_signal_name(discard))
    if replace is None:
        return None
    name, payload = replace
    payload_json = to_json(encode_plain(payload, "signal payload"))
    check_payload(
        f"the payload of signal {name!r}", payload_json, runtime.settings.max_signal_bytes
    )
    return SignalFix(check_signal_name(name), payload_json)
