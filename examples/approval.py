"""Expense approval: wait up to three days for a manager's decision, remind after one day,
then pay out after a cooling-off period in which the employee can still withdraw.

A signal with a timeout, a second wait, and a durable sleep. While it waits the run is
parked in Postgres and holds no worker slot, so a thousand pending expenses cost nothing.

Run it with `uv run python examples/approval.py`: with no DURABLE_DATABASE_URL or
DATABASE_URL set, the engine starts a local PostgreSQL in ./.durable. The demo shortens
the policy to seconds and plays the manager itself. tests/acceptance/test_examples.py runs
the real three-day policy with durable.testing in well under a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel

import durable
from durable import Engine, SignalTimeout, step, workflow


@dataclass
class Expense:
    expense_id: str
    employee: str
    manager: str
    amount_cents: int


@dataclass
class Policy:
    """How long each stage waits."""

    remind_after: timedelta = timedelta(days=1)
    decide_within: timedelta = timedelta(days=3)
    cooling_off: timedelta = timedelta(hours=12)


class Decision(BaseModel):
    """What the manager sends as the `decision` signal."""

    approved: bool
    by: str
    note: str = ""


@step
async def ask_manager(expense: Expense) -> str:
    print(f"  -> {expense.manager}: please approve {expense.expense_id}")
    return f"asked {expense.manager}"


@step
async def remind_manager(expense: Expense) -> str:
    print(f"  -> {expense.manager}: reminder, {expense.expense_id} is still waiting")
    return f"reminded {expense.manager}"


@step
async def pay(expense: Expense) -> str:
    print(f"  paying {expense.amount_cents / 100:.2f} to {expense.employee}")
    return f"paid-{expense.expense_id}"


@step
async def tell_employee(expense: Expense, outcome: str) -> str:
    print(f"  -> {expense.employee}: {expense.expense_id} {outcome}")
    return outcome


@workflow(name="expense_approval")
async def expense_approval(expense: Expense, policy: Policy | None = None) -> str:
    """Returns "paid", "rejected", "withdrawn" or "expired"."""
    policy = policy or Policy()
    await ask_manager(expense)
    await durable.set_event("stage", "awaiting decision")

    decision: Decision | None = None
    try:
        decision = await durable.wait_for_signal(
            "decision", timeout=policy.remind_after, type=Decision
        )
    except SignalTimeout:
        await remind_manager(expense)
        remaining = policy.decide_within - policy.remind_after
        try:
            decision = await durable.wait_for_signal("decision", timeout=remaining, type=Decision)
        except SignalTimeout:
            return await tell_employee(expense, "expired")

    if not decision.approved:
        return await tell_employee(expense, "rejected")

    await durable.set_event("stage", f"approved by {decision.by}, cooling off")
    await durable.sleep(policy.cooling_off)  # parks; wakes on the database clock
    if await _withdrawn():
        return await tell_employee(expense, "withdrawn")
    await pay(expense)
    await durable.set_event("stage", "paid")
    return await tell_employee(expense, "paid")


async def _withdrawn() -> bool:
    """A `withdraw` signal sent during the cooling-off period is waiting in the buffer."""
    try:
        await durable.wait_for_signal("withdraw", timeout=0)
    except SignalTimeout:
        return False
    return True


async def main() -> None:
    expense = Expense("EXP-1042", "ada@example.com", "grace@example.com", 12_500)
    demo_policy = Policy(timedelta(seconds=2), timedelta(seconds=20), timedelta(seconds=1))
    async with Engine(workflows=[expense_approval], inline_wait_seconds=0.5) as engine:
        handle = await engine.start(expense_approval, expense, demo_policy)
        print(f"run {handle.run_id} started; the manager takes a while to answer...")
        await handle.wait(step="step:remind_manager#0", timeout=30)
        print("stage:", await handle.get_event("stage"))

        delivery = await handle.signal("decision", {"approved": True, "by": "grace"})
        print(f"manager's decision: {delivery.kind}")
        print("result:", await handle.result(timeout=30))
        for recorded in (await engine.get_run(handle.run_id)).steps:
            print(f"  {recorded.cursor_key:<28} {recorded.status}")


if __name__ == "__main__":
    asyncio.run(main())
