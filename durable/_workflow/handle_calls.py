"""Calls on a ``RunHandle`` made by workflow code: each is a durable call.

A workflow re-executes from the top on every replay, so a handle call that reads state or
acts on another run must give the same answer each time, and act once. ``status``,
``get_event``, ``cancel`` and ``signal`` are recorded under their own cursor key
(``status:<workflow>#n``, ``get_event:<key>#n``, ``cancel:<workflow>#n``,
``send:<signal>#n``) and replayed from the record; ``result`` is a durable wait on a child
(``_children.wait_for_child``). ``wait`` and ``detail`` cannot be replayed faithfully and
are refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from durable._foundation.codec import to_json
from durable._foundation.signal_trace import signal_span
from durable._foundation.views import RunStatus
from durable._runs.deliveries import SignalDelivery, SignalKind
from durable._runs.operations import cancel_run, get_event, send_signal
from durable._workflow.context import Call, RunContext
from durable._workflow.replay import tracked, write
from durable.errors import RunNotFound

if TYPE_CHECKING:
    from durable._client.handles import RunHandle

__all__ = ["cancel", "event", "refuse", "signal", "status"]


async def _recorded(
    ctx: RunContext, kind: str, name: str, act: Callable[[str], Awaitable[Any]]
) -> Any:
    """Run ``act(cursor_key)`` once and record its JSON value; replays return the record."""
    call = ctx.begin(kind, name)
    return await tracked(ctx, call, _act_once, kind, name, act)


async def _act_once(
    ctx: RunContext, call: Call, kind: str, name: str, act: Callable[[str], Awaitable[Any]]
) -> Any:
    if call.record is not None:
        return call.record.output
    value = await ctx.execution.guarded(ctx, act(call.key))
    await write(ctx, key=call.key, seq=call.seq, kind=kind, name=name, status="completed",
                output_json=to_json(value))  # fmt: skip
    return value


def _name(handle: RunHandle[Any]) -> str:
    return handle.workflow.name if handle.workflow is not None else "run"


async def status(ctx: RunContext, handle: RunHandle[Any]) -> RunStatus:
    """The run's status as this workflow first saw it."""
    store = ctx.execution.runtime.store

    async def read(_: str) -> str:
        row = await store.run_outcome(handle.run_id)
        if row is None:
            raise RunNotFound(handle.run_id)
        return str(row.status)

    return RunStatus(await _recorded(ctx, "status", _name(handle), read))


async def event(ctx: RunContext, run_id: UUID, key: str) -> Any:
    """The run's event ``key`` as this workflow first read it."""
    runtime = ctx.execution.runtime
    return await _recorded(ctx, "get_event", key, lambda _: get_event(runtime, run_id, key))


async def cancel(ctx: RunContext, handle: RunHandle[Any]) -> bool:
    """Cancel the run once; replays return what the first cancel returned."""
    runtime = ctx.execution.runtime
    done = await _recorded(
        ctx, "cancel", _name(handle), lambda _: cancel_run(runtime, handle.run_id)
    )
    return bool(done)


async def signal(
    ctx: RunContext, run_id: UUID, name: str, payload: Any, idempotency_key: str | None
) -> SignalDelivery:
    """Send the signal once: a crash before the record is written re-sends it under the
    same idempotency key (derived from this call's cursor key), which stores it once."""
    runtime = ctx.execution.runtime

    async def send(key: str) -> dict[str, Any]:
        dedupe = idempotency_key or f"durable:{ctx.run_id}:{key}"
        with signal_span(runtime.telemetry, name, run_id) as sent:
            delivery = await send_signal(runtime, run_id, name, payload, dedupe)
            sent.delivered(delivery.kind, delivery.run_id)
        return {"kind": delivery.kind.value, "detail": delivery.detail}

    sent = await _recorded(ctx, "send", name, send)
    return SignalDelivery(SignalKind(sent["kind"]), run_id, name, sent["detail"])


def refuse(method: str) -> RuntimeError:
    """The error for a handle method that cannot be replayed inside a workflow."""
    return RuntimeError(
        f"handle.{method}() inside a workflow is not replay-safe (it reads another run's "
        "changing state at no fixed point); call it from a step, or use handle.result(), "
        "status() or get_event(), which are recorded"
    )
