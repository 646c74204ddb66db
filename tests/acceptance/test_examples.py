"""The examples' workflows, run with ``durable.testing.Environment``: the approval's real
three-day policy in well under a second, and the fan-out's children in parallel."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from durable import RunStatus, SignalKind
from durable.testing import Environment
from tests.acceptance import support

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    """Import examples/<name>.py (a script, not a package) under a stable module name."""
    module_name = f"durable_examples_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # signal payload types are resolved by module name
    spec.loader.exec_module(module)
    return module


approval = _load("approval")
fan_out = _load("fan_out")

EXPENSE = approval.Expense("EXP-7", "ada@example.com", "grace@example.com", 4_200)
APPROVE = {"approved": True, "by": "grace"}


@pytest.fixture
async def env(server_dsn: str) -> AsyncIterator[Environment]:
    workflows = [approval.expense_approval, fan_out.resize_batch, fan_out.resize_image]
    async with Environment(server_dsn, workflows=workflows) as environment:
        yield environment


def _keys(steps: list[object]) -> list[str]:
    return [s.cursor_key for s in steps]  # type: ignore[attr-defined]


# -- examples/approval.py ------------------------------------------------------------------


async def test_an_expense_approved_at_once_is_paid_after_cooling_off(env: Environment) -> None:
    handle = await env.start(approval.expense_approval, EXPENSE)
    await env.run_until_idle()
    assert await handle.status() == RunStatus.WAITING
    assert await handle.get_event("stage") == "awaiting decision"

    assert (await handle.signal("decision", APPROVE)).kind == SignalKind.DELIVERED
    await env.run_until_idle()  # skips the 12-hour cooling-off sleep
    assert await handle.result(timeout=1) == "paid"

    detail = await env.engine.get_run(handle.run_id)
    assert "step:remind_manager#0" not in _keys(detail.steps)
    assert "step:pay#0" in _keys(detail.steps)
    assert detail.events["stage"] == "paid"


async def test_the_manager_is_reminded_after_a_day(env: Environment) -> None:
    handle = await env.start(approval.expense_approval, EXPENSE)
    await env.advance("23h")
    assert "step:remind_manager#0" not in _keys((await env.engine.get_run(handle.run_id)).steps)

    await env.advance("2h")
    detail = await env.engine.get_run(handle.run_id)
    assert "step:remind_manager#0" in _keys(detail.steps)
    assert detail.status == RunStatus.WAITING  # the second wait

    await handle.signal("decision", APPROVE)
    await env.run_until_idle()
    assert await handle.result(timeout=1) == "paid"


async def test_no_decision_within_three_days_expires(env: Environment) -> None:
    handle = await env.start(approval.expense_approval, EXPENSE)
    await env.advance("1d")
    await env.advance("1d")
    assert await handle.status() == RunStatus.WAITING
    await env.advance("1d")
    assert await handle.result(timeout=1) == "expired"
    assert "step:pay#0" not in _keys((await env.engine.get_run(handle.run_id)).steps)


async def test_a_rejected_expense_is_not_paid(env: Environment) -> None:
    handle = await env.start(approval.expense_approval, EXPENSE)
    await env.run_until_idle()
    await handle.signal("decision", {"approved": False, "by": "grace", "note": "no receipt"})
    await env.run_until_idle()
    assert await handle.result(timeout=1) == "rejected"


async def test_a_malformed_decision_is_refused_and_the_run_keeps_waiting(env: Environment) -> None:
    handle = await env.start(approval.expense_approval, EXPENSE)
    await env.run_until_idle()
    refused = await handle.signal("decision", {"approved": "maybe"})
    assert refused.kind == SignalKind.INVALID_PAYLOAD
    await env.run_until_idle()
    assert await handle.status() == RunStatus.WAITING


async def test_a_withdrawal_during_cooling_off_stops_the_payment(env: Environment) -> None:
    handle = await env.start(approval.expense_approval, EXPENSE)
    await env.run_until_idle()
    await handle.signal("decision", APPROVE)
    await support.wait_for_status(handle, "sleeping")  # cooling off
    assert (await handle.signal("withdraw")).kind == SignalKind.BUFFERED
    await env.run_until_idle()
    assert await handle.result(timeout=1) == "withdrawn"


# -- examples/fan_out.py -------------------------------------------------------------------


async def test_a_batch_fans_out_to_one_child_per_image(env: Environment) -> None:
    images = [f"img/{n}.png" for n in range(6)]
    handle = await env.start(fan_out.resize_batch, images, 160)
    await env.run_until_idle()
    result = await handle.result(timeout=5)

    assert list(result) == images  # gather keeps call order
    assert all(size > 0 for size in result.values())
    parent = await env.engine.get_run(handle.run_id)
    assert len(parent.children) == len(images)
    assert _keys(parent.steps)[: len(images)] == [f"child:resize_image#{n}" for n in range(6)]
    for child_id in parent.children:
        child = await env.engine.get_run(child_id)
        assert child.status == RunStatus.COMPLETED
        assert child.parent_run_id == handle.run_id
    assert parent.events == {"done": len(images)}
