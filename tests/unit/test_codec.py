"""Unit tests for the codec: values and exceptions to JSON and back (no database)."""

from __future__ import annotations

import enum
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pydantic
import pytest

from durable._foundation.codec import Signature, encode_error, encode_plain, rebuild_exception
from durable.errors import (
    DurableError,
    ErrorInfo,
    NonRetryableError,
    SerializationError,
    StepFailed,
    StepTimeout,
)

# --- types used in hints (module level, so string annotations resolve) -----------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.StrEnum):
    SMALL = "s"
    LARGE = "l"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Line:
    sku: str
    qty: int
    price: Decimal


@dataclass
class Order:
    id: UUID
    placed_at: datetime
    lines: list[Line] = field(default_factory=list)
    note: str | None = None


class Customer(pydantic.BaseModel):
    name: str
    born: date
    color: Color
    tags: list[str] = []


class Receipt(pydantic.BaseModel):
    order_id: UUID
    total: Decimal
    paid_at: datetime
    customer: Customer | None = None


class Incident(Exception):
    """A user-defined exception at module level: rebuildable."""


class PairError(Exception):
    """Takes two arguments, stored as args, so it can be rebuilt from them."""

    def __init__(self, left: int, right: str) -> None:
        super().__init__(left, right)
        self.left = left
        self.right = right


class FormattedError(Exception):
    """Formats its message: its recorded args are not its constructor's arguments."""

    def __init__(self, amount: int) -> None:
        super().__init__(f"amount {amount} is too large")
        self.amount = amount


class NeedsTwo(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


class CodedError(DurableError):
    code = "coded_for_test"


class NotAnError:
    def __init__(self, *args: Any) -> None:
        self.args = args


def _raise(exc: BaseException) -> BaseException:
    """``exc`` after it was raised and caught, so it has a traceback."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def _roundtrip_args(fn: Any, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    sig = Signature(fn)
    text = sig.encode_args(args, kwargs)
    json.loads(text)  # real JSON text
    return sig.decode_args(text)


def _roundtrip_result(fn: Any, value: Any) -> Any:
    sig = Signature(fn)
    return sig.decode_result(json.loads(sig.encode_result(value)))


# --- values: round trips to the same types ------------------------------------------


async def takes_dataclass(order: Order) -> Order:
    return order


async def takes_model(receipt: Receipt) -> Receipt:
    return receipt


def _order() -> Order:
    return Order(
        id=uuid4(),
        placed_at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        lines=[Line("a-1", 2, Decimal("19.99")), Line("b-2", 1, Decimal("0.10"))],
        note=None,
    )


def _receipt() -> Receipt:
    return Receipt(
        order_id=uuid4(),
        total=Decimal("1234567890.123456789"),
        paid_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        customer=Customer(name="Ada", born=date(1815, 12, 10), color=Color.GREEN, tags=["x"]),
    )


def test_dataclass_argument_and_result_roundtrip() -> None:
    order = _order()
    args, kwargs = _roundtrip_args(takes_dataclass, order)
    assert kwargs == {}
    (back,) = args
    assert type(back) is Order
    assert back == order
    assert all(type(line) is Line for line in back.lines)
    assert all(type(line.price) is Decimal for line in back.lines)
    assert type(back.id) is UUID

    result = _roundtrip_result(takes_dataclass, order)
    assert type(result) is Order
    assert result == order


def test_pydantic_model_argument_and_result_roundtrip() -> None:
    receipt = _receipt()
    (back,), _ = _roundtrip_args(takes_model, receipt)
    assert type(back) is Receipt
    assert back == receipt
    assert type(back.customer) is Customer
    assert back.customer is not None
    assert back.customer.color is Color.GREEN

    result = _roundtrip_result(takes_model, receipt)
    assert type(result) is Receipt
    assert result == receipt


async def scalars(
    when: datetime, day: date, ident: UUID, amount: Decimal, gap: timedelta
) -> tuple[datetime, date, UUID, Decimal, timedelta]:
    return when, day, ident, amount, gap


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 3, 10, 2, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 2, 30, 0, 1, tzinfo=timezone(timedelta(hours=-7))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=5, minutes=45))),
    ],
)
def test_aware_datetime_keeps_instant_and_offset(when: datetime) -> None:
    (back, *_), _ = _roundtrip_args(
        scalars, when, date(2024, 2, 29), uuid4(), Decimal(1), timedelta(0)
    )
    assert type(back) is datetime
    assert back == when
    assert back.tzinfo is not None
    assert back.utcoffset() == when.utcoffset()
    assert back.microsecond == when.microsecond


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0.1"),
        Decimal("19.990"),
        Decimal("-0.000000000000000000000001"),
        Decimal("123456789012345678901234567890.123456789"),
        Decimal("1E+3"),
    ],
)
def test_decimal_roundtrips_exactly(amount: Decimal) -> None:
    ident = uuid4()
    (_, day, back_id, back, gap), _ = _roundtrip_args(
        scalars,
        datetime.now(UTC),
        date(2024, 2, 29),
        ident,
        amount,
        timedelta(hours=1, milliseconds=5),
    )
    assert type(back) is Decimal
    assert back == amount
    assert str(back) == str(amount)  # exact: same digits, same exponent
    assert back.as_tuple() == amount.as_tuple()
    assert type(day) is date
    assert day == date(2024, 2, 29)
    assert type(back_id) is UUID
    assert back_id == ident
    assert gap == timedelta(hours=1, milliseconds=5)


def test_scalar_result_roundtrip() -> None:
    value = (
        datetime(2024, 1, 1, tzinfo=UTC),
        date(2000, 1, 1),
        UUID("12345678-1234-5678-1234-567812345678"),
        Decimal("3.14159265358979323846264338327950288"),
        timedelta(days=2, seconds=3),
    )
    back = _roundtrip_result(scalars, value)
    assert type(back) is tuple
    assert back == value
    assert [type(v) for v in back] == [type(v) for v in value]


async def enums(color: Color, size: Size, priority: Priority) -> list[Color | Size | Priority]:
    return [color, size, priority]


def test_enums_roundtrip_to_members() -> None:
    (color, size, priority), _ = _roundtrip_args(enums, Color.RED, Size.LARGE, Priority.HIGH)
    assert color is Color.RED
    assert size is Size.LARGE
    assert priority is Priority.HIGH


async def enum_result() -> dict[str, Priority]:
    return {}


def test_enum_result_roundtrip() -> None:
    back = _roundtrip_result(enum_result, {"a": Priority.LOW, "b": Priority.HIGH})
    assert back == {"a": Priority.LOW, "b": Priority.HIGH}
    assert all(type(v) is Priority for v in back.values())


async def nested(
    lines: list[Line],
    by_sku: dict[str, Line],
    maybe: Line | None,
    pair: tuple[int, Color],
    many: tuple[Decimal, ...],
    grid: list[list[UUID]],
) -> dict[str, list[tuple[Size, Decimal | None]]]:
    return {}


def test_nested_containers_roundtrip() -> None:
    line = Line("x", 1, Decimal("1.50"))
    ids = [[uuid4(), uuid4()], [], [uuid4()]]
    (lines, by_sku, maybe, pair, many, grid), _ = _roundtrip_args(
        nested,
        [line, line],
        {"x": line},
        None,
        (3, Color.GREEN),
        (Decimal("1"), Decimal("2.0")),
        ids,
    )
    assert lines == [line, line]
    assert all(type(v) is Line for v in lines)
    assert by_sku == {"x": line}
    assert type(by_sku["x"]) is Line
    assert maybe is None
    assert pair == (3, Color.GREEN)
    assert type(pair) is tuple
    assert pair[1] is Color.GREEN
    assert many == (Decimal("1"), Decimal("2.0"))
    assert type(many) is tuple
    assert [str(d) for d in many] == ["1", "2.0"]
    assert grid == ids
    assert all(type(i) is UUID for row in grid for i in row)

    (_, _, maybe2, *_), _ = _roundtrip_args(nested, [], {}, line, (0, Color.RED), (), [])
    assert type(maybe2) is Line
    assert maybe2 == line


def test_nested_result_roundtrip() -> None:
    value = {"a": [(Size.SMALL, Decimal("0.01")), (Size.LARGE, None)], "b": []}
    back = _roundtrip_result(nested, value)
    assert back == value
    assert type(back["a"][0]) is tuple
    assert back["a"][0][0] is Size.SMALL
    assert type(back["a"][0][1]) is Decimal


async def keyword_only(order_id: UUID, *, amount: Decimal, when: datetime | None = None) -> None:
    return None


def test_keyword_only_parameters() -> None:
    ident = uuid4()
    sig = Signature(keyword_only)
    text = sig.encode_args((ident,), {"amount": Decimal("9.99")})
    stored = json.loads(text)
    assert stored == {"args": [str(ident)], "kwargs": {"amount": "9.99"}}
    args, kwargs = sig.decode_args(text)
    assert args == (ident,)
    assert kwargs == {"amount": Decimal("9.99")}
    assert type(kwargs["amount"]) is Decimal

    when = datetime(2030, 1, 1, tzinfo=UTC)
    args, kwargs = sig.decode_args(
        sig.encode_args((), {"order_id": ident, "amount": Decimal(1), "when": when})
    )
    # Passed by keyword or position, the call binds the same way.
    bound = sig.bind(args, kwargs).arguments
    assert bound == {"order_id": ident, "amount": Decimal(1), "when": when}
    assert type(bound["when"]) is datetime


async def variadic(first: int, *items: Line, flag: bool = False, **extra: Decimal) -> None:
    return None


def test_var_args_and_var_kwargs() -> None:
    a, b = Line("a", 1, Decimal("1.1")), Line("b", 2, Decimal("2.2"))
    args, kwargs = _roundtrip_args(
        variadic, 7, a, b, flag=True, tax=Decimal("0.19"), fee=Decimal(0)
    )
    assert args == (7, a, b)
    assert all(type(x) is Line for x in args[1:])
    assert kwargs == {"flag": True, "tax": Decimal("0.19"), "fee": Decimal(0)}
    assert type(kwargs["tax"]) is Decimal
    assert type(kwargs["fee"]) is Decimal


def test_var_kwargs_named_like_positional_only_parameter() -> None:
    async def fn(a: int, /, **kw: str) -> None:
        return None

    # A legal call: 'a' in kwargs goes to **kw, not to the positional-only parameter.
    args, kwargs = _roundtrip_args(fn, 1, a="x")
    assert args == (1,)
    assert kwargs == {"a": "x"}


async def defaults(name: str, count: int = 3, when: date = date(2020, 1, 1)) -> None:
    return None


def test_defaults_not_passed_are_not_stored_and_still_apply() -> None:
    sig = Signature(defaults)
    text = sig.encode_args(("n",), {})
    assert json.loads(text) == {"args": ["n"], "kwargs": {}}
    args, kwargs = sig.decode_args(text)
    bound = sig.bind(args, kwargs)
    bound.apply_defaults()
    assert bound.arguments == {"name": "n", "count": 3, "when": date(2020, 1, 1)}


def test_keyword_argument_after_skipped_default_keeps_its_parameter() -> None:
    sig = Signature(defaults)
    args, kwargs = sig.decode_args(sig.encode_args(("n",), {"when": date(2021, 6, 1)}))
    bound = sig.bind(args, kwargs)
    bound.apply_defaults()
    assert bound.arguments == {"name": "n", "count": 3, "when": date(2021, 6, 1)}


async def paging(query: str, offset: int = 0, limit: int = 10) -> None:
    return None


def test_keyword_argument_after_skipped_default_same_type() -> None:
    # Same types: a misplaced value would decode without error and bind to the wrong name.
    sig = Signature(paging)
    args, kwargs = sig.decode_args(sig.encode_args(("q",), {"limit": 1}))
    bound = sig.bind(args, kwargs)
    bound.apply_defaults()
    assert bound.arguments == {"query": "q", "offset": 0, "limit": 1}


async def untyped(a, b, *rest, key=None, **more):  # type: ignore[no-untyped-def]
    return a


def test_untyped_parameters_are_plain_json() -> None:
    payload = {"n": 1, "f": 1.5, "s": "é", "l": [1, None, True], "d": {"x": {"y": []}}}
    args, kwargs = _roundtrip_args(untyped, payload, [1, 2], "r1", 3, key="k", extra={"z": 1})
    assert args == (payload, [1, 2], "r1", 3)
    assert kwargs == {"key": "k", "extra": {"z": 1}}
    assert _roundtrip_result(untyped, {"ok": [1, "two"]}) == {"ok": [1, "two"]}


def test_decode_accepts_already_decoded_mapping() -> None:
    sig = Signature(keyword_only)
    ident = uuid4()
    args, kwargs = sig.decode_args({"args": [str(ident)], "kwargs": {"amount": "1.5"}})
    assert args == (ident,)
    assert kwargs == {"amount": Decimal("1.5")}


def test_start_by_name_style_plain_json_is_decoded_by_hints() -> None:
    # A process without the code stores plain JSON; the worker decodes it by the hints.
    sig = Signature(takes_dataclass)
    ident = uuid4()
    raw = {
        "args": [
            {
                "id": str(ident),
                "placed_at": "2024-05-01T12:00:00+02:00",
                "lines": [{"sku": "s", "qty": 1, "price": "2.50"}],
            }
        ],
        "kwargs": {},
    }
    (order,), _ = sig.decode_args(json.dumps(raw))
    assert type(order) is Order
    assert order.id == ident
    assert order.lines == [Line("s", 1, Decimal("2.50"))]
    assert order.placed_at.utcoffset() == timedelta(hours=2)


# --- values that cannot be encoded ------------------------------------------------------


async def typed_amount(amount: int, payload: Any = None) -> int:
    return amount


async def loose(payload, other=None):  # type: ignore[no-untyped-def]
    return payload


def _a_function() -> None:
    return None


@pytest.mark.parametrize(
    ("fn", "args", "argument"),
    [
        (loose, (object(),), "payload"),
        (loose, (1, {object(), object()}), "other"),
        (loose, (_a_function,), "payload"),
        (loose, (lambda: None,), "payload"),
        (typed_amount, ("12",), "amount"),
        (typed_amount, (1, object()), "payload"),
        (takes_dataclass, ({"id": "not an order"},), "order"),
    ],
    ids=["object", "set-of-objects", "function", "lambda", "str-for-int", "any-object", "dict"],
)
def test_unencodable_argument_raises_serialization_error_naming_it(
    fn: Any, args: tuple[Any, ...], argument: str
) -> None:
    with pytest.raises(SerializationError) as info:
        Signature(fn).encode_args(args, {})
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, DurableError)
    assert info.value.code == "serialization_error"
    assert repr(argument) in str(info.value)


def test_unencodable_keyword_argument_names_it() -> None:
    with pytest.raises(SerializationError, match="'when'"):
        Signature(keyword_only).encode_args((uuid4(),), {"amount": Decimal(1), "when": object()})


def test_unencodable_result_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="result"):
        Signature(typed_amount).encode_result("not an int")
    with pytest.raises(SerializationError, match="result"):
        Signature(loose).encode_result(object())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_is_refused_or_kept(value: float) -> None:
    """JSON has no NaN/Infinity: encoding must refuse it, never silently store null."""

    async def fn(x: float, y=None) -> float:  # type: ignore[no-untyped-def]
        return x

    sig = Signature(fn)
    for args in ((value,), (1.0, value)):
        try:
            text = sig.encode_args(args, {})
        except SerializationError:
            continue
        back, _ = sig.decode_args(text)
        assert len(back) == len(args)
        assert isinstance(back[-1], float)
        assert (math.isnan(back[-1]) and math.isnan(value)) or back[-1] == value


def test_wrong_call_raises_type_error() -> None:
    sig = Signature(typed_amount)
    with pytest.raises(TypeError, match="amount"):
        sig.encode_args((), {})
    with pytest.raises(TypeError):
        sig.encode_args((1, 2, 3), {})
    with pytest.raises(TypeError):
        sig.encode_args((1,), {"nope": 1})
    with pytest.raises(TypeError):
        Signature(keyword_only).encode_args((uuid4(), Decimal(1)), {})


def test_stored_value_of_wrong_type_fails_decoding() -> None:
    with pytest.raises(SerializationError, match="amount"):
        Signature(typed_amount).decode_args({"args": ["not a number"], "kwargs": {}})
    with pytest.raises(SerializationError):
        Signature(typed_amount).decode_result("nope")


def test_encode_plain_refuses_objects() -> None:
    assert encode_plain({"a": [1, "b"]}) == {"a": [1, "b"]}
    with pytest.raises(SerializationError):
        encode_plain(object())


# --- exceptions --------------------------------------------------------------------------


def test_encode_error_captures_type_message_traceback_args() -> None:
    exc = _raise(ValueError("bad value", 42))
    record = encode_error(exc)
    assert record["type"] == "builtins.ValueError"
    assert record["message"] == str(exc)
    assert record["code"] is None
    assert record["args"] == ["bad value", 42]
    assert "Traceback (most recent call last)" in record["traceback"]
    assert "_raise" in record["traceback"]
    assert "ValueError: ('bad value', 42)" in record["traceback"]
    json.dumps(record)  # JSON-ready


def test_encode_error_of_durable_error_records_code() -> None:
    record = encode_error(_raise(StepTimeout("too slow")))
    assert record["type"] == "durable.errors.StepTimeout"
    assert record["code"] == "step_timeout"
    assert record["message"] == "too slow"

    record = encode_error(CodedError("x"))
    assert record["type"] == f"{__name__}.CodedError"
    assert record["code"] == "coded_for_test"


def test_encode_error_with_unencodable_args_still_records_the_error() -> None:
    exc = _raise(Incident(object()))
    record = encode_error(exc)
    assert record["type"] == f"{__name__}.Incident"
    assert record["message"].startswith("<object object at")
    assert record["args"] is None
    json.dumps(record)


def test_encode_error_never_raised() -> None:
    record = encode_error(KeyError("k"))
    assert record["type"] == "builtins.KeyError"
    assert record["args"] == ["k"]
    assert "KeyError" in record["traceback"]


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("missing"),
        RuntimeError(),
        ZeroDivisionError("division by zero"),
        OSError(2, "No such file"),
        NonRetryableError("stop"),
        StepTimeout("slow"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_rebuild_builtin_and_durable_exceptions(exc: Exception) -> None:
    exc = _raise(exc)  # type: ignore[assignment]
    record = encode_error(exc)
    rebuilt = rebuild_exception(record)
    assert type(rebuilt) is type(exc)
    assert rebuilt.args == exc.args
    assert str(rebuilt) == str(exc)
    notes = getattr(rebuilt, "__notes__", [])
    assert any(record["traceback"].rstrip() in note for note in notes)


def test_rebuild_user_defined_exceptions_from_test_module() -> None:
    exc = _raise(Incident("disk full", 3))
    rebuilt = rebuild_exception(encode_error(exc))
    assert type(rebuilt) is Incident
    assert rebuilt.args == ("disk full", 3)

    pair = _raise(PairError(1, "two"))
    rebuilt_pair = rebuild_exception(encode_error(pair))
    assert type(rebuilt_pair) is PairError
    assert rebuilt_pair.left == 1
    assert rebuilt_pair.right == "two"
    assert str(rebuilt_pair) == str(pair)
    assert any("Recorded traceback" in n for n in rebuilt_pair.__notes__)
    assert any("_raise" in n for n in rebuilt_pair.__notes__)


def test_rebuild_survives_a_json_round_trip() -> None:
    record = json.loads(json.dumps(encode_error(_raise(PairError(5, "x")))))
    rebuilt = rebuild_exception(record)
    assert type(rebuilt) is PairError
    assert rebuilt.args == (5, "x")


def _assert_step_failed(rebuilt: Exception, record: dict[str, Any]) -> StepFailed:
    assert type(rebuilt) is StepFailed
    assert isinstance(rebuilt.error, ErrorInfo)
    assert rebuilt.error.type == record["type"]
    assert rebuilt.error.message == record["message"]
    assert rebuilt.error.code == record.get("code")
    assert rebuilt.error.traceback == record.get("traceback")
    assert rebuilt.code == "step_failed"
    return rebuilt


def test_unimported_module_falls_back_without_importing_it() -> None:
    assert "antigravity" not in sys.modules
    for type_name in ("antigravity.Boom", "antigravity.sub.Boom", "antigravity"):
        record = {
            "type": type_name,
            "message": "m",
            "code": None,
            "traceback": "Traceback...",
            "args": ["m"],
        }
        _assert_step_failed(rebuild_exception(record), record)
        assert "antigravity" not in sys.modules
        assert not any(name.startswith("antigravity") for name in sys.modules)


def test_fallback_carries_cursor_key() -> None:
    record = {"type": "nowhere_module_xyz.Err", "message": "m", "traceback": None, "args": []}
    rebuilt = _assert_step_failed(rebuild_exception(record, cursor_key="step:charge#2"), record)
    assert rebuilt.cursor_key == "step:charge#2"
    assert "step:charge#2" in str(rebuilt)
    assert "nowhere_module_xyz.Err: m" in str(rebuilt)


@pytest.mark.parametrize(
    "type_name",
    [
        "builtins.int",
        "builtins.len",
        "builtins.KeyboardInterrupt",  # BaseException only: not rebuilt inside a workflow
        f"{__name__}.NotAnError",
        f"{__name__}.Missing",
        f"{__name__}._raise",
        "builtins",
        "",
    ],
)
def test_non_exception_types_fall_back(type_name: str) -> None:
    record = {"type": type_name, "message": "m", "code": None, "traceback": "tb", "args": ["m"]}
    _assert_step_failed(rebuild_exception(record), record)


def test_constructor_needing_different_args_falls_back() -> None:
    exc = _raise(NeedsTwo("a", "b"))
    record = encode_error(exc)
    assert record["args"] == ["a/b"]
    _assert_step_failed(rebuild_exception(record), record)


@pytest.mark.parametrize(
    "exc",
    [FormattedError(7), StepFailed(ErrorInfo("builtins.ValueError", "v"), cursor_key="step:x#0")],
    ids=["formatted-message", "StepFailed"],
)
def test_rebuild_never_changes_the_message(exc: Exception) -> None:
    """A constructor that formats its args must not be fed its own formatted message."""
    record = encode_error(_raise(exc))
    rebuilt = rebuild_exception(record)
    if type(rebuilt) is StepFailed and type(exc) is not StepFailed:
        _assert_step_failed(rebuilt, record)
    else:
        assert type(rebuilt) is type(exc)
        assert str(rebuilt) == str(exc)


def test_rebuild_non_json_arg_falls_back() -> None:
    record = encode_error(_raise(Incident(object())))
    _assert_step_failed(rebuild_exception(record), record)

    # A record whose args are missing or malformed is not rebuilt either.
    for args in (None, "m", {"a": 1}):
        bad = {"type": "builtins.ValueError", "message": "m", "traceback": None, "args": args}
        _assert_step_failed(rebuild_exception(bad), bad)


@pytest.mark.parametrize(
    "arg",
    [{1, 2}, datetime(2024, 1, 1, tzinfo=UTC), b"raw", Decimal("1.5"), (1, 2)],
    ids=["set", "datetime", "bytes", "decimal", "tuple"],
)
def test_arg_that_is_not_plain_json_is_not_rebuilt_as_another_value(arg: Any) -> None:
    """Rebuilt exactly (same args) or not at all: never with a converted argument."""
    exc = _raise(Incident(arg))
    record = json.loads(json.dumps(encode_error(exc)))
    rebuilt = rebuild_exception(record)
    if type(rebuilt) is StepFailed:
        _assert_step_failed(rebuilt, record)
    else:
        assert type(rebuilt) is Incident
        assert rebuilt.args == exc.args


def _plain(a: int, b: int = 1) -> None: ...
def _starred(a: int, *rest: int) -> None: ...
def _positional_only(a: int, /, b: int = 2) -> None: ...
def _needs_keyword(a: int, *, k: int) -> None: ...
def _optional_keyword(*, k: int = 3) -> None: ...
def _no_parameters() -> None: ...


@pytest.mark.parametrize(
    "fn", [_plain, _starred, _positional_only, _needs_keyword, _optional_keyword, _no_parameters]
)
@pytest.mark.parametrize("count", range(5))
def test_stored_positional_arguments_fit_exactly_when_python_would_bind_them(
    fn: Any, count: int
) -> None:
    """encode_args and decode_args skip inspect's binding for keyword-free calls; the
    shortcut must agree with it on every shape of signature."""
    sig = Signature(fn)
    args = tuple(range(count))
    stored = json.dumps({"args": list(args), "kwargs": {}})
    try:
        sig.bind(args, {})
    except TypeError:
        with pytest.raises(TypeError):
            sig.encode_args(args, {})
        with pytest.raises(SerializationError, match="do not fit"):
            sig.decode_args(stored)
    else:
        assert json.loads(sig.encode_args(args, {})) == {"args": list(args), "kwargs": {}}
        assert sig.decode_args(stored) == (args, {})
