"""Retrying a failed run from the step that failed, keeping every other record.

``engine.retry`` does it on request; a workflow declared with ``retries=`` has it done
automatically when a run fails, after a backoff, in the same transaction that fails it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from durable._foundation.codec import decode_error
from durable._workflow.children import child_run_id
from durable.errors import (
    ErrorInfo,
    NonDeterminismError,
    NonRetryableError,
    PayloadTooLarge,
    RunAttemptsExhausted,
    SerializationError,
    WorkflowTimeout,
)

if TYPE_CHECKING:
    from durable._store.store import Store
    from durable._workflow.decorators import RetryPolicy

__all__ = ["failed_keys", "retry_after_failure", "retry_tree", "retryable"]

# Failures a retry of the same code and input would only repeat, or that must stay final.
_FINAL = (
    NonRetryableError,
    NonDeterminismError,
    SerializationError,
    PayloadTooLarge,
    WorkflowTimeout,
    RunAttemptsExhausted,
)


def retryable(exc: BaseException) -> bool:
    """Whether a run that failed with ``exc`` may be retried automatically."""
    return isinstance(exc, Exception) and not isinstance(exc, _FINAL)


async def retry_after_failure(
    store: Store,
    run_id: UUID,
    attempt: int,
    error_json: str,
    policy: RetryPolicy,
) -> float | None:
    """Fail the run and requeue it after a backoff, in one transaction, when it has
    automatic retries left: the seconds until it runs again, or None (no retry left or the
    claim was lost; the caller then finishes the run as usual)."""
    async with store.transaction() as conn:
        row = await store.fail_for_retry(conn, run_id, attempt, error_json, policy.retries)
        if row is None:
            return None
        number = row["auto_retries"] + 1
        delay = policy.delay(number, random.random())
        await retry_tree(store, conn, run_id, error_json)
        await store.schedule_run_retry(conn, run_id, delay, number, row["deadline_at"])
    return delay


async def retry_tree(
    store: Store, conn: asyncpg.Connection, run_id: UUID, error: str | None
) -> list[UUID]:
    steps = await store.steps_of(conn, run_id)
    keys = failed_keys(steps, error)
    await store.reset_failed(conn, run_id, keys)
    retried = [run_id]
    for step in steps:
        if step["cursor_key"] in keys and step["kind"] == "child":
            child = child_run_id(run_id, step["cursor_key"])
            row = await store.lock_for_retry(conn, child)
            if row is not None and row["status"] == "failed":
                retried += await retry_tree(store, conn, child, row["error"])
    return retried


def failed_keys(steps: Sequence[Any], run_error: str | None) -> list[str]:
    """The failed record that failed the run, which a retry runs again.

    That is the latest failed record carrying the run's error (the same type and message,
    or a ``StepFailed`` naming its key); failing that, the latest failed record after
    every record of another status. Other failed records were caught by the workflow:
    they stay, so the retried run takes the same path.
    """
    failed = sorted((s for s in steps if s["status"] == "failed"), key=lambda s: -s["seq"])
    mine = decode_error(run_error)
    for record in failed:
        theirs = decode_error(record["error"])
        if mine and theirs and _same_failure(mine, theirs, record["cursor_key"]):
            return [record["cursor_key"]]
    last_other = max((s["seq"] for s in steps if s["status"] != "failed"), default=-1)
    return [s["cursor_key"] for s in failed[:1] if s["seq"] > last_other]


def _same_failure(run: ErrorInfo, record: ErrorInfo, key: str) -> bool:
    if (run.type, run.message) == (record.type, record.message):
        return True
    return run.code == "step_failed" and f" at {key}:" in run.message
