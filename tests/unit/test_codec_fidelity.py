"""The codec stores only what comes back exactly (invariant 7; issue 10), with no database.

``Signature.store_result`` returns the JSON text and the value a replay decodes from it;
the first execution returns that value too. What cannot be stored exactly (NaN, a set
under ``Any``, a NUL, a lone surrogate, None for a non-Optional hint) raises
``SerializationError``; error texts are escaped instead, so a failure is never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic
import pytest

from durable._foundation.codec import (
    Signature,
    encode_error,
    encode_plain,
    rebuild_exception,
    storable_text,
    to_json,
)
from durable._foundation.limits import check_text, unstorable_text
from durable.errors import PayloadTooLarge, SerializationError

NAN = float("nan")
INF = float("inf")


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Loose:
    anything: Any


class Receipt(pydantic.BaseModel):
    id: str
    lines: dict[str, int]


class ModelWithAny(pydantic.BaseModel):
    anything: Any


async def any_result() -> Any: ...
async def int_result() -> int: ...
async def str_result() -> str: ...
async def float_result() -> float: ...
async def optional_float() -> float | None: ...
async def receipt_result() -> Receipt: ...
async def loose_result() -> Loose: ...
async def model_with_any() -> ModelWithAny: ...
async def point_result() -> Point: ...
async def mapping_result() -> dict[str, Any]: ...
async def pair_result() -> tuple[int, int]: ...
async def unhinted(value):  # type: ignore[no-untyped-def]  # no hints on purpose
    return value


async def takes_int(n: int) -> None: ...
async def annotated_receipt() -> Annotated[Receipt, "a model under Annotated"]: ...


def _stored(fn: Any, value: Any) -> tuple[str, Any]:
    return Signature(fn).store_result(value)


def _replayed(fn: Any, text: str) -> Any:
    return Signature(fn).decode_result(json.loads(text))


def test_key_order_is_kept_in_the_text_and_the_value() -> None:
    value = {"zebra": 1, "ant": {"y": 2, "b": 3}}
    text, first = _stored(any_result, value)
    assert text == '{"zebra":1,"ant":{"y":2,"b":3}}'
    assert list(first) == list(_replayed(any_result, text)) == ["zebra", "ant"]
    text, first = _stored(receipt_result, Receipt(id="r", lines={"z": 1, "a": 2}))
    assert list(first.lines) == list(_replayed(receipt_result, text).lines) == ["z", "a"]


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (any_result, (1, 2), [1, 2]),
        (unhinted, ("a", {"k": (1,)}), ["a", {"k": [1]}]),
        (any_result, {1: "one"}, {"1": "one"}),
        (pair_result, (1, 2), (1, 2)),
        (float_result, 3, 3.0),
        (point_result, Point(1, 2), Point(1, 2)),
        (annotated_receipt, Receipt(id="r", lines={}), Receipt(id="r", lines={})),
    ],
    ids=["tuple-any", "nested-tuple", "int-key", "tuple", "int-for-float", "dc", "annotated"],
)
def test_first_execution_sees_what_replays_decode(fn: Any, value: Any, expected: Any) -> None:
    text, first = _stored(fn, value)
    replayed = _replayed(fn, text)
    assert first == replayed == expected
    assert type(first) is type(replayed) is type(expected)


@pytest.mark.parametrize(
    ("fn", "value"), [(any_result, "text"), (int_result, 7), (str_result, "s"), (float_result, 0.1)]
)
def test_scalars_of_the_hinted_type_are_not_decoded_again(fn: Any, value: Any) -> None:
    text, first = _stored(fn, value)
    assert first is value  # provably identical: the decode is skipped
    assert _replayed(fn, text) == value


def test_plain_json_under_any_is_its_json_form() -> None:
    value = {"b": [1, "x", None, 2.5, True, {"z": 0, "a": 1}]}
    text, first = _stored(any_result, value)
    replayed = _replayed(any_result, text)
    assert first == replayed == value
    assert json.dumps(first) == json.dumps(replayed) == json.dumps(value)  # same order


@pytest.mark.parametrize(
    "fn", [int_result, str_result, receipt_result, point_result, pair_result, mapping_result]
)
def test_none_for_a_non_optional_hint_is_refused(fn: Any) -> None:
    with pytest.raises(SerializationError):
        Signature(fn).store_result(None)
    with pytest.raises(SerializationError):
        Signature(fn).encode_result(None)


def test_none_where_the_hint_allows_it_is_stored() -> None:
    assert _stored(optional_float, None) == ("null", None)
    assert _stored(any_result, None) == ("null", None)


def test_none_for_a_non_optional_argument_is_refused_at_start() -> None:
    with pytest.raises(SerializationError, match="'n'"):
        Signature(takes_int).encode_args((None,), {})


@pytest.mark.parametrize(
    ("fn", "value"),
    [
        (any_result, [NAN]),
        (any_result, {"k": INF}),
        (any_result, [NAN, {"k": INF}]),
        (mapping_result, {"k": [-INF]}),
        (optional_float, NAN),
        (float_result, INF),
        (unhinted, {"deep": [[{"v": NAN}]]}),
        (loose_result, Loose([NAN])),
        (model_with_any, ModelWithAny(anything={"k": INF})),
    ],
)
def test_nested_non_finite_floats_are_refused(fn: Any, value: Any) -> None:
    with pytest.raises(SerializationError, match="JSON"):
        Signature(fn).store_result(value)


@pytest.mark.parametrize("value", [{1, 2}, frozenset({1}), {"k": [{1}]}, ({2},)])
def test_sets_under_any_are_refused(value: Any) -> None:
    with pytest.raises(SerializationError, match="set"):
        _stored(any_result, value)
    with pytest.raises(SerializationError, match="set"):
        encode_plain(value, "signal payload")


def test_sets_under_a_set_hint_round_trip() -> None:
    async def tags() -> set[str]: ...

    _, first = _stored(tags, {"a", "b"})
    assert first == {"a", "b"}


@pytest.mark.parametrize(
    "value", ["a\x00b", {"k\x00": 1}, ["\ud800"], {"k": "\udfff"}, "\ud83d"], ids=repr
)
def test_text_postgres_cannot_store_is_refused(value: Any) -> None:
    with pytest.raises(SerializationError, match=r"NUL|surrogate"):
        _stored(any_result, value)
    with pytest.raises(SerializationError, match=r"NUL|surrogate"):
        to_json(value)


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    for text in ["\\u0000", "a\\\\u0000", "\\\\\\u0000x"]:
        stored, first = _stored(any_result, text)
        assert json.loads(stored) == first == text
    with pytest.raises(SerializationError, match="NUL"):
        to_json("\\\x00")


def test_non_ascii_text_is_stored() -> None:
    text, first = _stored(any_result, {"emoji": "\U0001f600", "accent": "é"})
    assert first == json.loads(text)


def test_storable_text_escapes_what_postgres_cannot_store() -> None:
    assert storable_text("plain") == "plain"
    assert storable_text("a\x00b") == "a\\x00b"
    assert storable_text("x\ud800y") == "x\\ud800y"
    assert unstorable_text(storable_text("\x00\udfff\U0001f600")) is None


def test_error_texts_are_escaped_and_the_record_stores() -> None:
    record = encode_error(ValueError("bad \x00 and \ud800"))
    assert record["message"] == "bad \\x00 and \\ud800"
    assert "\\x00" in record["traceback"]
    assert record["args"] is None  # they would not come back as they were
    to_json(record)  # storable


def test_error_whose_str_fails_is_still_recorded() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    record = encode_error(Broken())
    assert "str() failed" in record["message"]


def test_payload_too_large_is_rebuilt_with_its_fields() -> None:
    error = PayloadTooLarge("the result of step s", 1002, 300)
    rebuilt = rebuild_exception(json.loads(to_json(encode_error(error))))
    assert type(rebuilt) is PayloadTooLarge
    assert (rebuilt.what, rebuilt.size, rebuilt.limit) == ("the result of step s", 1002, 300)
    assert (
        str(rebuilt)
        == str(error)
        == ("the result of step s is 1002 bytes encoded, over the limit of 300 bytes")
    )


@pytest.mark.parametrize("bad", ["a\x00", "\ud800"])
def test_check_text_refuses_names_postgres_cannot_store(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot store the tag"):
        check_text("the tag", bad)
    assert check_text("the tag", "fine é") == "fine é"
    assert check_text("the tag", None) is None


def _returns_int() -> int:
    return 0


def _returns_str() -> str:
    return ""


def _returns_float() -> float:
    return 0.0


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (_returns_int, 7, "7"),
        (_returns_str, "naïve", '"naïve"'),
        (_returns_float, 1.5, "1.5"),
    ],
)
def test_a_scalar_result_of_its_hinted_type_is_stored_as_itself(
    fn: Any, value: Any, text: str
) -> None:
    stored, returned = Signature(fn).store_result(value)
    assert stored == text
    assert returned == value
    assert type(returned) is type(value)


@pytest.mark.parametrize(("fn", "value"), [(_returns_float, NAN), (_returns_str, "a\x00b")])
def test_a_scalar_result_json_cannot_keep_is_refused(fn: Any, value: Any) -> None:
    with pytest.raises(SerializationError):
        Signature(fn).store_result(value)
