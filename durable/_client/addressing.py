"""Which run a signal means: by run id, or by its workflow and start idempotency key (the
business key a caller already has, e.g. ``("checkout", "order-42")``), within a resource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from durable._foundation.signal_trace import signal_span
from durable._foundation.validate import check_name, check_optional_key, check_run_id
from durable._runs.deliveries import SignalDelivery, SignalKind, check_signal_name
from durable._runs.operations import send_signal
from durable._runs.scoping import check_resource_id, in_resource

if TYPE_CHECKING:
    from durable._runs.runtime import Runtime
    from durable._workflow.decorators import Workflow

__all__ = ["signal_run"]


async def signal_run(
    runtime: Runtime,
    run_id: UUID | str | None,
    name: str | None,
    payload: Any,
    *,
    idempotency_key: str | None,
    resource_id: str | None,
    workflow: Workflow[..., Any] | str | None,
    delivery_key: str | None,
) -> SignalDelivery:
    """``engine.signal``: find the run, check its resource, store the signal (the engine
    counts the outcome by kind), all in the PRODUCER span ``send_signal {name}``."""
    if name is None:
        raise TypeError("signal() needs the signal's name=")
    check_signal_name(name)
    scope = check_resource_id(resource_id)
    if workflow is None:
        if run_id is None:
            raise TypeError("signal() needs a run id, or workflow= and idempotency_key=")
        if idempotency_key is not None and delivery_key is not None:
            raise TypeError("pass the signal's dedupe key once: idempotency_key or delivery_key")
        target: UUID | None = check_run_id("run_id", run_id)
        dedupe = check_optional_key(
            "idempotency_key", delivery_key if delivery_key is not None else idempotency_key
        )
        wf_name, by_key = None, None
    else:
        if run_id is not None:
            raise TypeError("signal() takes a run id or workflow=, not both")
        if not isinstance(idempotency_key, str) or not idempotency_key:
            raise TypeError("signal(workflow=...) needs the run's idempotency_key=")
        check_optional_key("idempotency_key", idempotency_key)
        wf_name = check_name("workflow", workflow if isinstance(workflow, str) else workflow.name)
        target, dedupe = None, check_optional_key("delivery_key", delivery_key)
        by_key = (wf_name, idempotency_key)
    with signal_span(runtime.telemetry, name, target, wf_name) as sent:
        if by_key is not None:
            target = await runtime.store.run_by_key(*by_key)
        if target is None:
            delivery = SignalDelivery(SignalKind.RUN_NOT_FOUND, None, name, "no run has that key")
        elif scope is not None and not await in_resource(runtime, target, scope):
            delivery = SignalDelivery(SignalKind.RUN_NOT_FOUND, target, name)
        else:
            delivery = await send_signal(runtime, target, name, payload, dedupe)
        sent.delivered(delivery.kind, delivery.run_id)
        return delivery
