"""``wf.options(...).start(...)``: the typed start, with per-run options checked when given.

``checkout.options(idempotency_key="order-42", tags=["tenant:acme"]).start(order)`` keeps the
workflow's own signature (``ParamSpec``), so a type checker checks ``order``, and returns a
``RunHandle`` typed by the workflow's result. Each option is validated by ``.options()``
with the checks ``client.start`` applies, so a bad value fails there, before any run exists.
The options object is immutable: keep one and start many runs with it, or chain
``.options()`` again (a later value overrides an earlier one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar
from uuid import UUID

from durable._runs.current import running_client
from durable._runs.start_options import StartOptions, check_options, merged
from durable._workflow import context as _context
from durable._workflow.children import run_child

if TYPE_CHECKING:
    from durable._client.handles import RunHandle
    from durable._workflow.decorators import Workflow

__all__ = ["WorkflowOptions", "start_workflow"]

P = ParamSpec("P")
R = TypeVar("R")
Duration = float | int | timedelta | str

_NOT_FOR_CHILDREN = ("idempotency_key", "run_id")
"""A child's run id is derived from its parent's run and cursor key: it starts once already."""


class WorkflowOptions(Generic[P, R]):
    """A workflow with start options bound: ``.start(*args)`` starts a run with them.

    Made by ``wf.options(...)``; immutable and reusable. Inside a workflow, ``.start()``
    starts a child run (as ``wf.start()`` does there) with the options that apply to a
    child; ``idempotency_key`` and ``run_id`` do not (a child already starts once) and
    raise ``ValueError``.
    """

    __slots__ = ("_chosen", "_workflow")

    def __init__(self, workflow: Workflow[P, R], chosen: StartOptions | None = None) -> None:
        self._workflow = workflow
        self._chosen = chosen or StartOptions()

    @property
    def workflow(self) -> Workflow[P, R]:
        """The workflow these options start."""
        return self._workflow

    @property
    def chosen(self) -> StartOptions:
        """The checked options (unset ones are None)."""
        return self._chosen

    def options(
        self,
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
    ) -> WorkflowOptions[P, R]:
        """These options with the given ones set over them (an option left out keeps its
        value). Each is checked now; a bad value raises here and nothing is started."""
        later = check_options(
            idempotency_key=idempotency_key, tags=tags, delay=delay, queue=queue,
            priority=priority, concurrency_key=concurrency_key, timeout=timeout,
            resource_id=resource_id, metadata=metadata, run_id=run_id,
        )  # fmt: skip
        return WorkflowOptions(self._workflow, merged(self._chosen, later))

    async def start(self, *args: P.args, **kwargs: P.kwargs) -> RunHandle[R]:
        """Start a run with these options on the running engine and return its handle.

        Inside a workflow this starts a child run without waiting for it."""
        return await start_workflow(self._workflow, self._chosen, args, kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowOptions):
            return NotImplemented
        return self._workflow is other._workflow and self._chosen == other._chosen

    def __hash__(self) -> int:
        return hash((id(self._workflow), self._chosen))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self._chosen, name)!r}" for name in self._chosen.given()
        )
        return f"<durable workflow {self._workflow.name!r} options({shown})>"


async def start_workflow(
    workflow: Workflow[P, R],
    chosen: StartOptions,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> RunHandle[R]:
    """Start ``workflow``: a child run inside a workflow, else a run on the running engine."""
    ctx = _context.current()
    if ctx is not None:
        _context.refuse_in_step(f"{workflow.name}.start()")
        refused = [name for name in _NOT_FOR_CHILDREN if name in chosen.given()]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot be set on a child run ({workflow.name}.start() "
                "inside a workflow): its run id comes from the parent's run and cursor key, "
                "so it starts once already"
            )
        handle: RunHandle[R] = await run_child(ctx, workflow, args, kwargs, wait=False,
                                               options=chosen)  # fmt: skip
        return handle
    started: RunHandle[R] = await running_client()._start_run(
        workflow,
        workflow.name,
        workflow.version,
        args,
        dict(kwargs),
        idempotency_key=chosen.idempotency_key,
        tags=chosen.tags or (),
        run_id=chosen.run_id,
        delay=chosen.delay,
        queue=chosen.queue or workflow.queue,
        priority=chosen.priority or 0,
        concurrency_key=chosen.concurrency_key,
        timeout=chosen.timeout,
        resource_id=chosen.resource_id,
        metadata_json=chosen.metadata_json,
    )
    return started
