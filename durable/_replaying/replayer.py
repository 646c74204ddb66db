"""Replay a run's history against the current code, with no database and no worker.

The workflow body runs on a ``RunContext`` loaded from the history's records, as a worker
would run it, but its services come from ``_ReplayExecution`` instead of an ``Execution``:
recorded calls return their recorded outcomes, and the first call the history has no
outcome for (a call with no record, a step that would run again, a wait that would park)
stops the replay with ``_HistoryEnd``. A call whose record belongs to another call raises
``NonDeterminismError`` exactly as it would in a worker, because the check is the same code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast
from uuid import UUID

import anyio

from durable._client.handles import RunHandle
from durable._foundation.history import History, HistoryRecord
from durable._replaying import report as verdict
from durable._replaying.report import Outcome, ReplayReport
from durable._runs.hook_dispatch import NO_HOOKS
from durable._runs.registry import Registry, default_registry
from durable._runs.runtime import Runtime, Settings
from durable._workflow import context as _context
from durable._workflow.context import Call, ParkRequest, Record, RunContext
from durable._workflow.decorators import Workflow, workflow_list
from durable.errors import NonDeterminismError, UnknownWorkflow

__all__ = [
    "HistoryLike",
    "Outcome",
    "ReplayReport",
    "Replayer",
    "expand_paths",
    "load_history",
    "replay_history",
]

T = TypeVar("T")
_FINAL = ("completed", "failed")


class _HistoryEnd(BaseException):
    """The replay reached a call the history holds no outcome for; it stops there.

    A BaseException so that ``except Exception`` in workflow code cannot swallow it.
    """

    def __init__(self, key: str | None, why: str) -> None:
        super().__init__(f"{key}: {why}" if key else why)
        self.key = key
        self.why = why


@dataclass(eq=False)
class _ReplayContext(RunContext):
    """A run context that stops at the end of the history instead of running on."""

    finished: bool = False
    """The history is of a finished run: every wait in it was over."""
    stopped: _HistoryEnd | None = None
    diverged: NonDeterminismError | None = None
    taken: set[str] = field(default_factory=set)

    @property
    def replaying(self) -> bool:
        # A finished run went past every point of its code: a patch check anywhere in it
        # answers as for a run that already went past it with the old code.
        return self.finished or self.seq <= self.max_seq

    def begin(self, kind: str, name: str) -> Call:
        # A call past the end of the history is begun, not refused: it stops when awaited
        # (``tracked`` checks first), so calls made beside it, as in ``gather(a(), b())``,
        # are still awaited and their coroutines never dropped un-awaited.
        if self.fatal is not None and not isinstance(self.fatal, _HistoryEnd):
            raise self.fatal
        key, seq, record = self._take(kind, name)
        if _past_end(record):
            self.stop(key, _why(record))
        self.inflight += 1
        return Call(key, seq, record)

    def take(self, kind: str, name: str) -> tuple[str, int, Record | None]:
        """For synchronous calls (``now()``, ``patched()``...): stop right here."""
        key, seq, record = self._take(kind, name)
        if _past_end(record):
            raise self.stop(key, _why(record))
        return key, seq, record

    def _take(self, kind: str, name: str) -> tuple[str, int, Record | None]:
        try:
            key, seq, record = RunContext.take(self, kind, name)
        except NonDeterminismError as exc:
            self.diverged = self.diverged or exc  # even past a stop: a real run would fail
            raise
        self.taken.add(key)
        return key, seq, record

    def stop(self, key: str | None, why: str) -> _HistoryEnd:
        end = _HistoryEnd(key, why)
        self.stopped = self.stopped or end
        self.fatal = self.fatal or end  # every later durable call stops too
        return end

    def passed(self, call: Call) -> bool:
        """Whether the run went past this call: it finished, or recorded a later call."""
        return self.finished or self.max_seq > call.seq


def _past_end(record: Record | None) -> bool:
    return record is None or record.status not in _FINAL


def _why(record: Record | None) -> str:
    if record is None:
        return "a new call: the history ends before it"
    return f"recorded as {record.status}: the run was still at it"


class _ReplayTelemetry:
    """What workflow-side code may read of telemetry during a replay: nothing is emitted."""

    log_during_replay = False

    def __init__(self, ctx: _ReplayContext) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> NoReturn:
        # Spans and metrics belong to calls that run: the history has no outcome for them.
        raise self._ctx.stop(self._ctx.last_key, "a call that runs (telemetry)")


class _ReplayRuntime:
    """The runtime a replay offers: settings and no engine; the database is out of reach."""

    @staticmethod
    def make_handle(run_id: UUID, workflow: Workflow[..., Any], parent: UUID) -> RunHandle[Any]:
        """A child's handle: in a replay its calls are answered from the records alone."""
        handle: RunHandle[Any] = RunHandle(cast(Any, None), run_id, workflow)
        handle.parent_run_id = parent
        return handle

    def __init__(self, ctx: _ReplayContext) -> None:
        self._ctx = ctx
        self.settings = Settings()
        self.telemetry = _ReplayTelemetry(ctx)

    def __getattr__(self, name: str) -> NoReturn:
        raise self._ctx.stop(self._ctx.last_key, f"a call that needs the database ({name})")


class _ReplayExecution:
    """The replay-only counterpart of ``Execution``: the services durable calls use."""

    hooks = NO_HOOKS
    """A replay makes no transition: it fires no lifecycle hook."""

    def __init__(self) -> None:
        self._ctx: _ReplayContext | None = None
        self._runtime: _ReplayRuntime | None = None

    def bind(self, ctx: _ReplayContext) -> None:
        self._ctx = ctx
        self._runtime = _ReplayRuntime(ctx)

    @property
    def ctx(self) -> _ReplayContext:
        assert self._ctx is not None, "bind() the replay execution to its context first"
        return self._ctx

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "bind() the replay execution to its context first"
        # Settings and telemetry as a Runtime has them; any other attribute (the store, the
        # listener) stops the replay, so the narrower class stands in for the whole.
        return cast(Runtime, self._runtime)

    def clock(self) -> float:
        raise self.ctx.stop(self.ctx.last_key, "a call that reads the clock")

    async def record(self, ctx: RunContext, **fields: Any) -> bool:
        raise self.ctx.stop(fields.get("key"), "a new outcome would be recorded")

    async def guarded(self, ctx: RunContext, call: Awaitable[T]) -> T:
        close = getattr(call, "close", None)
        if close is not None:
            close()  # a store call never started: no "never awaited" warning
        raise self.ctx.stop(self.ctx.last_key, "a call that needs the database")

    async def flush(self, ctx: RunContext) -> None:
        if ctx.pending:
            raise self.ctx.stop(ctx.pending[0].key, "a new value would be recorded")

    async def finish_call(self, ctx: RunContext, call: Call) -> None:
        if not call.done:
            call.done = True
            ctx.inflight -= 1

    async def wait_until(self, ctx: RunContext, call: Call, epoch: float | None) -> None:
        if epoch is None:
            return
        record = call.record
        if record is not None and record.kind == "sleep" and self.ctx.passed(call):
            return
        raise self.ctx.stop(call.key, "the run waits here")

    async def park(self, ctx: RunContext, call: Call, request: ParkRequest) -> NoReturn:
        raise self.ctx.stop(call.key, f"the run would park ({request.status})")


@dataclass
class _Ran:
    """How the replayed body ended."""

    result_json: str | None = None
    raised: BaseException | None = None
    setup_error: BaseException | None = None


def _records(history: History) -> list[Record]:
    return [_record(r) for r in history.records]


def _record(r: HistoryRecord) -> Record:
    return Record(
        key=r.key, seq=r.seq, kind=r.kind, name=r.name, status=r.status, output=r.output,
        error=r.error, attempt=r.attempt, retry_at=r.retry_at,
    )  # fmt: skip


async def replay_history(
    history: History, registry: Registry, source: str | None = None
) -> ReplayReport:
    """Run the registered code of the history's workflow against its records."""
    workflow = registry.get(history.workflow, history.version) or registry.get(history.workflow)
    if workflow is None:
        error = UnknownWorkflow(history.workflow)
        return verdict.report(
            history, source, ok=False, outcome="incomplete", error=error, detail=str(error)
        )
    execution = _ReplayExecution()
    ctx = cast(
        _ReplayContext,
        _ReplayContext.load(
            _records(history),
            run_id=history.run_id,
            workflow=workflow.name,
            version=workflow.version,
            attempt=history.attempt + 1,
            execution=execution,
            finished=history.finished,
        ),
    )
    execution.bind(ctx)
    ran = _Ran()
    # A task of its own: the run's contextvars (and structlog's cursor) stay in it.
    async with anyio.create_task_group() as tg:
        tg.start_soon(_run_body, workflow, history, ctx, ran)
    return _judge(history, ctx, ran, source, workflow.version)


async def _run_body(
    workflow: Workflow[Any, Any], history: History, ctx: _ReplayContext, ran: _Ran
) -> None:
    try:
        args, kwargs = workflow.signature.decode_args(history.input)
    except Exception as exc:  # the new signature refuses the recorded input
        ran.setup_error = exc
        return
    token = _context.enter(ctx)
    try:
        result = await workflow.fn(*args, **kwargs)
        ran.result_json = workflow.signature.encode_result(result)
    except (KeyboardInterrupt, SystemExit):
        raise
    except anyio.get_cancelled_exc_class():
        if ctx.stopped is None:
            raise
        ran.raised = ctx.stopped
    except BaseException as exc:  # judged below, never re-raised
        ran.raised = exc
    finally:
        _context.leave(token)


def _judge(
    history: History, ctx: _ReplayContext, ran: _Ran, source: str | None, code_version: int
) -> ReplayReport:
    extra: dict[str, Any] = {
        "code_version": code_version,
        "patches": dict(ctx.patches),
        "replayed": len(ctx.taken & set(ctx.records)),
        "unused": tuple(r.key for r in history.records if r.key not in ctx.taken),
        "stopped_at": None if ctx.stopped is None else ctx.stopped.key,
    }
    if ran.setup_error is not None:
        error = ran.setup_error
        detail = f"the recorded input does not fit the code: {error}"
        return verdict.report(
            history, source, ok=False, outcome="incomplete", error=error, detail=detail, **extra
        )
    if ctx.diverged is not None:
        detail = str(ctx.diverged)
        return verdict.report(
            history, source, ok=False, outcome="different", error=ctx.diverged, detail=detail,
            **extra,
        )  # fmt: skip
    if ctx.stopped is not None:
        return verdict.stopped(history, str(ctx.stopped), source, extra)
    if ran.raised is not None:
        return verdict.raised(history, ran.raised, source, extra)
    return verdict.returned(history, ran.result_json, source, extra)


HistoryLike = History | Mapping[str, Any] | str | os.PathLike[str]
"""A history, its parsed JSON document, or the path of a history file."""


class Replayer:
    """Replays run histories against the code of ``workflows`` (default: every workflow
    decorated in this process), with no database and no worker::

        replayer = Replayer(workflows=[checkout])
        report = await replayer.replay("histories/3f0c.json")
        assert report.ok, report.describe()

    Each history is replayed against the workflow of its name and version, else the newest
    version of that name in ``workflows``.
    """

    def __init__(self, workflows: Iterable[object] | None = None) -> None:
        self._registry = (
            default_registry if workflows is None else Registry(workflow_list(workflows))
        )

    async def replay(self, history: HistoryLike) -> ReplayReport:
        """Replay one history (``InvalidHistory`` when it is not one; ``OSError`` when its
        file cannot be read) and report what the current code does with it."""
        loaded, source = load_history(history)
        return await replay_history(loaded, self._registry, source)

    def replay_many(
        self, histories: Iterable[HistoryLike] | str | os.PathLike[str]
    ) -> list[ReplayReport]:
        """Replay every history (a directory stands for its ``*.json`` files) and return a
        report per history, in order: ready for ``pytest.mark.parametrize``. Synchronous,
        so it runs at import time; inside async code, ``await replay(...)`` each one."""
        items = expand_paths(histories)
        loaded = [load_history(item) for item in items]  # every file is read before any runs

        async def replay_all() -> list[ReplayReport]:
            return [await replay_history(h, self._registry, src) for h, src in loaded]

        if _loop_running():
            raise RuntimeError(
                "replay_many() runs its own event loop; inside async code, "
                "`await replayer.replay(history)` for each history instead"
            )
        return anyio.run(replay_all)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def expand_paths(
    histories: Iterable[HistoryLike] | str | os.PathLike[str],
) -> list[HistoryLike]:
    """The histories named: a directory stands for the ``*.json`` files in it, sorted."""
    if isinstance(histories, str | os.PathLike):
        histories = [histories]
    out: list[HistoryLike] = []
    for item in histories:
        if isinstance(item, str | os.PathLike) and Path(item).is_dir():
            out.extend(sorted(Path(item).glob("*.json")))
        else:
            out.append(item)
    return out


def load_history(item: HistoryLike) -> tuple[History, str | None]:
    """The history and the file it came from (None for one given in memory)."""
    if isinstance(item, History):
        return item, None
    if isinstance(item, Mapping):
        return History.from_dict(dict(item)), None
    return History.load(item), str(item)
