"""Quickstart: a three-step onboarding workflow on an embedded PostgreSQL.

Run it with `uv run python examples/quickstart.py`. With no DURABLE_DATABASE_URL or
DATABASE_URL set, the engine starts a local PostgreSQL in ./.durable and reuses it next time.
Run it twice: the second start with the same idempotency key returns the recorded run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from durable import Engine, step, workflow


@dataclass
class Account:
    user_id: str
    email: str
    plan: str


@step
async def create_account(email: str) -> Account:
    print(f"  creating the account for {email}")
    return Account(user_id=f"user-{abs(hash(email)) % 10_000:04d}", email=email, plan="free")


@step(retries=3, initial_interval=0.2)
async def send_welcome_email(account: Account) -> str:
    print(f"  sending the welcome email to {account.email}")
    return f"welcome-{account.user_id}"


@step
async def start_trial(account: Account, days: int) -> Account:
    print(f"  starting a {days}-day trial for {account.user_id}")
    return Account(user_id=account.user_id, email=account.email, plan=f"trial-{days}d")


@workflow(name="onboard")
async def onboard(email: str) -> dict[str, str]:
    account = await create_account(email)
    message_id = await send_welcome_email(account)
    account = await start_trial(account, days=14)
    return {"user_id": account.user_id, "plan": account.plan, "welcome": message_id}


async def main() -> None:
    async with Engine() as engine:
        handle = await engine.start(onboard, "ada@example.com", idempotency_key="ada")
        print(f"run {handle.run_id} ({'new' if handle.created else 'already recorded'})")
        result = await handle.result(timeout=30)
        print("result:", result)
        run = await engine.get_run(handle.run_id)
        for recorded in run.steps:
            print(f"  {recorded.cursor_key:<32} {recorded.status}")


if __name__ == "__main__":
    asyncio.run(main())
