"""Logs from inside runs: ``durable.logger`` and a ``logging.Filter`` for stdlib users.

durable never configures logging or structlog. Around every execution it binds ``run_id``,
``workflow``, ``run_attempt`` and ``cursor`` with ``structlog.contextvars`` (see
``_telemetry``), and ``step_attempt`` inside a step body (the step's own attempt, never
the run's); a structlog setup with ``structlog.contextvars.merge_contextvars`` shows them
on every line.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from structlog.contextvars import get_contextvars

from durable._workflow import context as _context

__all__ = ["RUN_LOG_KEYS", "ReplaySafeLogger", "RunContextFilter", "logger"]

RUN_LOG_KEYS = ("run_id", "workflow", "run_attempt", "cursor", "step_attempt")
"""The keys durable binds: around every execution, and ``step_attempt`` in a step body."""


class RunContextFilter(logging.Filter):
    """Copies the bound run keys onto stdlib ``LogRecord`` objects.

    Add it to a handler and use them in a format string::

        handler.addFilter(durable.RunContextFilter())
        handler.setFormatter(logging.Formatter("%(message)s run=%(run_id)s cursor=%(cursor)s"))

    Outside a run the attributes are None, so the format string never fails. Attributes a
    record already has (from ``extra=``) are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        bound = get_contextvars()
        for key in RUN_LOG_KEYS:
            if not hasattr(record, key):
                setattr(record, key, bound.get(key))
        return True


def _replaying() -> bool:
    """True when the current run re-executes recorded calls and must not log again."""
    ctx = _context.current()
    if ctx is None or not ctx.replaying:
        return False
    runtime = getattr(ctx.execution, "runtime", None)
    telemetry = getattr(runtime, "telemetry", None)
    return not getattr(telemetry, "log_during_replay", False)


class ReplaySafeLogger:
    """A structlog-style logger for workflow code that stays silent while the run replays.

    A resumed run re-executes its workflow body up to the last recorded call; lines logged
    on that path were already logged by the attempt that recorded the calls, so they are
    dropped (``Engine(log_during_replay=True)`` keeps them). Everything else goes to
    ``structlog.get_logger("durable.workflow")``, under the application's own structlog
    configuration, with the run's keys bound through contextvars.
    """

    __slots__ = ("_logger",)

    def __init__(self, wrapped: Any = None) -> None:
        if wrapped is None:
            wrapped = structlog.get_logger("durable.workflow")
        self._logger: Any = wrapped

    def __repr__(self) -> str:
        return f"<durable.logger {self._logger!r}>"

    # -- binding, as structlog's bound loggers do -------------------------------------------

    def bind(self, **new_values: Any) -> ReplaySafeLogger:
        return ReplaySafeLogger(self._logger.bind(**new_values))

    def unbind(self, *keys: str) -> ReplaySafeLogger:
        return ReplaySafeLogger(self._logger.unbind(*keys))

    def try_unbind(self, *keys: str) -> ReplaySafeLogger:
        return ReplaySafeLogger(self._logger.try_unbind(*keys))

    def new(self, **new_values: Any) -> ReplaySafeLogger:
        return ReplaySafeLogger(self._logger.new(**new_values))

    # -- logging ----------------------------------------------------------------------------

    def _emit(self, method: str, event: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        if _replaying():
            return None
        return getattr(self._logger, method)(event, *args, **kw)

    def debug(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("debug", event, args, kw)

    def info(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("info", event, args, kw)

    def warning(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("warning", event, args, kw)

    warn = warning

    def error(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("error", event, args, kw)

    def critical(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("critical", event, args, kw)

    fatal = critical

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("exception", event, args, kw)

    def msg(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._emit("msg", event, args, kw)

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> Any:
        if _replaying():
            return None
        return self._logger.log(level, event, *args, **kw)


logger = ReplaySafeLogger()
"""``durable.logger``: bound to the current run by contextvars, silent while it replays."""
