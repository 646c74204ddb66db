"""Typed values survive the recorded path: a replayed step returns the same type and value."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel

import durable
from durable import Engine, RunStatus, step, workflow
from tests.acceptance import support
from tests.acceptance.support import CALLS, OBSERVED

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Address:
    street: str
    zip_code: str


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    address: Address
    labels: tuple[str, ...]


class Invoice(BaseModel):
    number: str
    lines: list[int]
    customer: Customer
    due: datetime


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 5


CUSTOMER = Customer(1, "Ada", Address("1 Loop St", "02139"), ("vip", "beta"))
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
INVOICE = Invoice(number="INV-7", lines=[3, 4], customer=CUSTOMER, due=WHEN + timedelta(days=30))
RUN_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
AMOUNT = Decimal("1234.5600")


@step
async def load_customer() -> Customer:
    CALLS["load_customer"] += 1
    return CUSTOMER


@step
async def load_invoice() -> Invoice:
    CALLS["load_invoice"] += 1
    return INVOICE


@step
async def read_clock() -> datetime:
    CALLS["read_clock"] += 1
    return WHEN


@step
async def new_id() -> uuid.UUID:
    CALLS["new_id"] += 1
    return RUN_UUID


@step
async def total() -> Decimal:
    CALLS["total"] += 1
    return AMOUNT


@step
async def pick_color() -> Color:
    CALLS["pick_color"] += 1
    return Color.GREEN


@step
async def pick_priority() -> Priority:
    CALLS["pick_priority"] += 1
    return Priority.HIGH


@step
async def echo_customer(customer: Customer, amount: Decimal) -> Customer:
    # Arguments reach the step body as given (no re-encoding on a live call).
    CALLS["echo_customer"] += 1
    assert isinstance(customer, Customer)
    assert isinstance(amount, Decimal)
    return customer


@dataclass(frozen=True)
class Bundle:
    customer: Customer
    invoice: Invoice
    when: datetime
    id: uuid.UUID
    amount: Decimal
    color: Color
    priority: Priority


@workflow
async def typed_then_park(customer: Customer, amount: Decimal) -> Bundle:
    values = (
        await load_customer(),
        await load_invoice(),
        await read_clock(),
        await new_id(),
        await total(),
        await pick_color(),
        await pick_priority(),
        await echo_customer(customer, amount),
    )
    OBSERVED.append((durable.current_run().attempt, values))
    await support.park_once()
    return Bundle(*values[:7])


WORKFLOWS = [typed_then_park]

EXPECTED = (CUSTOMER, INVOICE, WHEN, RUN_UUID, AMOUNT, Color.GREEN, Priority.HIGH, CUSTOMER)


def _assert_same(values: tuple[object, ...]) -> None:
    assert len(values) == len(EXPECTED)
    for got, want in zip(values, EXPECTED, strict=True):
        assert type(got) is type(want), (got, want)
        assert got == want
    customer, invoice, when, _, amount, *_ = values
    assert isinstance(customer, Customer)
    assert type(customer.address) is Address
    assert customer.labels == ("vip", "beta")
    assert isinstance(invoice, Invoice)
    assert type(invoice.customer) is Customer
    assert isinstance(when, datetime)
    assert when.utcoffset() == timedelta(0)
    assert str(amount) == "1234.5600"  # the exact decimal, trailing zeros included


async def test_typed_step_results_replay_as_the_same_types(engine: Engine) -> None:
    handle = await typed_then_park.start(CUSTOMER, AMOUNT)
    await support.wait_for_status(handle, "sleeping")
    bundle = await handle.result(timeout=5)

    # Two executions: the first ran the steps, the second replayed them from their records.
    assert [attempt for attempt, _ in OBSERVED] == [1, 2]
    live, replayed = OBSERVED[0][1], OBSERVED[1][1]
    _assert_same(live)
    _assert_same(replayed)
    for name in (
        "load_customer",
        "load_invoice",
        "read_clock",
        "new_id",
        "total",
        "pick_color",
        "pick_priority",
        "echo_customer",
    ):
        assert CALLS[name] == 1, name
    assert CALLS["park_once"] == 2

    # The run's own output goes through the workflow's return hint.
    assert type(bundle) is Bundle
    assert bundle == Bundle(*EXPECTED[:7])
    assert type(bundle.invoice) is Invoice
    assert type(bundle.color) is Color
    assert type(bundle.priority) is Priority

    detail = await engine.get_run(handle.run_id)
    assert detail.status == RunStatus.COMPLETED
    assert detail.attempt == 2
    by_key = {s.cursor_key: s for s in detail.steps}
    assert by_key["step:total#0"].output == "1234.5600"
    assert by_key["step:new_id#0"].output == str(RUN_UUID)
    assert by_key["step:pick_color#0"].output == "green"
    assert by_key["step:load_customer#0"].output["address"] == {
        "street": "1 Loop St",
        "zip_code": "02139",
    }
    assert by_key["step:park_once#0"].attempt == 2
