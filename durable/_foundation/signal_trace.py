"""Tracing of signals: a PRODUCER span where a signal is sent, a link where it is consumed.

``send_signal {name}`` (PRODUCER) wraps ``engine.signal`` (by run id or business key),
``handle.signal`` inside a workflow and a fast-forward that delivers a signal. The W3C
trace context current inside it is stored with the signal (``send_signal`` in
``durable._runs.operations`` reads it). The execution that consumes the signal adds a
span link to that context on its ``run_workflow`` span, plus a ``durable.signal.received``
span event, so one trace view leads from the request that sent a signal to the run it
resumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from durable._foundation.telemetry import (
    RUN_ID,
    STEP_CURSOR,
    WORKFLOW_NAME,
    _Active,
    add_event,
    extract_context,
)

if TYPE_CHECKING:
    from durable._foundation.telemetry import Telemetry

__all__ = [
    "EVENT_SIGNAL_RECEIVED",
    "SIGNAL_DELIVERY",
    "SIGNAL_NAME",
    "SentSignal",
    "link_signal",
    "signal_span",
]

SIGNAL_NAME = "durable.signal.name"
SIGNAL_DELIVERY = "durable.signal.delivery"
EVENT_SIGNAL_RECEIVED = "durable.signal.received"
"""A wait consumed a signal; the run span also links to the span that sent it."""


@dataclass(slots=True)
class SentSignal:
    """What ``signal_span`` yields: note the outcome on the span."""

    span: Span

    def delivered(self, kind: str, run_id: object) -> None:
        """Tag the span with the delivery kind and the run the signal went to (if any)."""
        if not self.span.is_recording():
            return
        self.span.set_attribute(SIGNAL_DELIVERY, str(kind))
        if run_id is not None:
            self.span.set_attribute(RUN_ID, str(run_id))


@contextmanager
def signal_span(
    telemetry: Telemetry,
    name: str | None,
    run_id: UUID | str | None = None,
    workflow: str | None = None,
) -> Iterator[SentSignal]:
    """The PRODUCER span ``send_signal {name}`` around sending one signal; current inside,
    so the trace context stored with the signal is this span's."""
    attributes: dict[str, AttributeValue] = {SIGNAL_NAME: str(name)}
    if run_id is not None:
        attributes[RUN_ID] = str(run_id)
    if workflow is not None:
        attributes[WORKFLOW_NAME] = workflow
    span = telemetry.tracer.start_span(
        f"send_signal {name}", kind=SpanKind.PRODUCER, attributes=attributes
    )
    with _Active(span):
        yield SentSignal(span)


def link_signal(traceparent: str | None, tracestate: str | None, name: str, key: str) -> None:
    """The current (run) span consumed a signal: link it to the span that sent it."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, AttributeValue] = {SIGNAL_NAME: name, STEP_CURSOR: key}
    add_event(EVENT_SIGNAL_RECEIVED, attributes)
    if not traceparent:
        return
    sender = trace.get_current_span(extract_context(traceparent, tracestate)).get_span_context()
    if sender.is_valid:
        span.add_link(sender, attributes)
