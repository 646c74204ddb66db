"""Metrics: the instruments of a meter, shared by every engine that uses it, and the cached
queue-depth gauges. ``_telemetry`` records through them."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from durable._foundation.version import VERSION


class QueueReadiness(NamedTuple):
    """Due-but-unclaimed runs of one queue."""

    queue: str
    ready: int
    lag: float | None
    """Seconds the oldest of them has been due."""


ReadyCounter = Callable[[Sequence[str]], Awaitable[Sequence[QueueReadiness]]]
"""Reads the readiness of some queues: the store's ``count_ready_runs``."""

__all__ = [
    "INSTRUMENTATION_NAME",
    "QUEUE_NAME",
    "Instruments",
    "QueueDepth",
    "QueueReadiness",
    "ReadyCounter",
    "instruments",
    "version",
]

INSTRUMENTATION_NAME = "durable"
QUEUE_NAME = "durable.queue.name"

# Seconds; steps are short, runs may sleep for days.
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800)

_log = logging.getLogger("durable.telemetry")


class QueueDepth:
    """Ready-but-unclaimed runs per queue, cached for the observable gauges.

    Gauge callbacks run on the metric reader's thread and must not touch the database, so
    they report this cache; a worker refreshes it on its heartbeat, and only once a reader
    has observed the gauge (no reader, no query).
    """

    def __init__(self) -> None:
        self.observed = False
        self.values: dict[str, tuple[int, float]] = {}
        """queue -> (ready runs, seconds the oldest of them has been due)."""

    async def refresh(self, count_ready: ReadyCounter, queues: Sequence[str]) -> None:
        if not self.observed:
            return
        try:
            rows = await count_ready(queues)
        except Exception as exc:  # a metric must never break the worker
            _log.debug("could not count ready runs: %s", exc)
            return
        values = dict.fromkeys(queues, (0, 0.0))
        for row in rows:
            values[row.queue] = (row.ready, max(0.0, row.lag or 0.0))
        self.values = values


class Instruments:
    """The instruments of one meter, shared by every engine that uses that meter (an SDK
    returns the first registration of a name, so a second engine's gauge callbacks would
    otherwise be dropped)."""

    def __init__(self, meter: Meter) -> None:
        self.run_duration = meter.create_histogram(
            "durable.run.duration",
            unit="s",
            description="From a run's first execution to its end, sleeps and retries included.",
            explicit_bucket_boundaries_advisory=_RUN_BUCKETS,
        )
        self.step_duration = meter.create_histogram(
            "durable.step.duration",
            unit="s",
            description="Duration of one executed step attempt (replayed steps are not counted).",
            explicit_bucket_boundaries_advisory=_STEP_BUCKETS,
        )
        self.runs_finished = meter.create_counter(
            "durable.runs.finished",
            unit="{run}",
            description="Runs that reached a final status, by workflow and result.",
        )
        self.runs_started = meter.create_counter(
            "durable.runs.started",
            unit="{run}",
            description="Runs stored by a start, a child call or a schedule, by workflow.",
        )
        self.runs_suspended = meter.create_counter(
            "durable.runs.suspended",
            unit="{run}",
            description="Times a run parked (sleeping, waiting or paused), by status.",
        )
        self.signals = meter.create_counter(
            "durable.signals",
            unit="{signal}",
            description="Signals sent, by delivery kind (delivered, buffered, duplicate, ...).",
        )
        self.step_attempts = meter.create_counter(
            "durable.step.attempts",
            unit="{attempt}",
            description="Executed step attempts, by workflow, step and result.",
        )
        self._sources: weakref.WeakSet[QueueDepth] = weakref.WeakSet()
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            "durable.queue.ready",
            callbacks=[self._observe_ready],
            unit="{run}",
            description="Runs that are due but not yet claimed by a worker, per queue.",
        )
        meter.create_observable_gauge(
            "durable.queue.lag",
            callbacks=[self._observe_lag],
            unit="s",
            description="How long the oldest due-but-unclaimed run of a queue has waited.",
        )

    def add_source(self, source: QueueDepth) -> None:
        with self._lock:
            self._sources.add(source)

    def _snapshot(self) -> list[dict[str, tuple[int, float]]]:
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            source.observed = True
        return [source.values for source in sources]

    def _observe_ready(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(ready, {QUEUE_NAME: queue})
            for values in self._snapshot()
            for queue, (ready, _) in values.items()
        ]

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(lag, {QUEUE_NAME: queue})
            for values in self._snapshot()
            for queue, (_, lag) in values.items()
        ]


_by_provider: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
_global: list[Instruments] = []
_instruments_lock = threading.Lock()


def instruments(meter_provider: MeterProvider | None) -> Instruments:
    code_version = version()
    with _instruments_lock:
        if meter_provider is None:
            if not _global:  # one proxy meter: it follows a global provider set later
                _global.append(Instruments(metrics.get_meter(INSTRUMENTATION_NAME, code_version)))
            return _global[0]
        found = _by_provider.get(meter_provider)
        if found is None:
            found = Instruments(meter_provider.get_meter(INSTRUMENTATION_NAME, code_version))
            _by_provider[meter_provider] = found
        return found


def version() -> str:
    return VERSION
