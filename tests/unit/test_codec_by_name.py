"""A start by name: JSON-shaped arguments checked by the hints as the worker decodes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from durable._foundation.codec import Signature, encode_start_input
from durable.errors import SerializationError


@dataclass
class Guest:
    name: str
    born: date


async def invite(guest: Guest, seats: int = 1) -> str:
    return f"{guest.name} {seats}"


SIG = Signature(invite)


def test_json_shaped_values_are_coerced_by_the_hints() -> None:
    text = SIG.encode_json_args(({"name": "Ada", "born": "1815-12-10"},), {"seats": "2"})
    args, kwargs = SIG.decode_args(text)
    assert args == (Guest("Ada", date(1815, 12, 10)), 2)
    assert kwargs == {}


def test_typed_values_by_name_encode_alike() -> None:
    typed = SIG.encode_json_args((Guest("Ada", date(1815, 12, 10)),), {"seats": 2})
    plain = SIG.encode_json_args(({"name": "Ada", "born": "1815-12-10"}, 2), {})
    assert typed == plain


def test_the_object_path_still_takes_typed_values_only() -> None:
    with pytest.raises(SerializationError):
        SIG.encode_args(({"name": "Ada", "born": "1815-12-10"},), {})


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"args": [], "kwargs": {}}, "guest"),
        ({"args": [{"name": "A", "born": "1815-12-10"}], "kwargs": {"colour": 1}}, "colour"),
        ({"args": [{"name": "A", "born": "1815-12-10"}, 1, 2], "kwargs": {}}, "too many"),
        ({"args": {"guest": 1}, "kwargs": {}}, "malformed"),
        ([1, 2], "malformed"),
    ],
)
def test_stored_arguments_that_do_not_fit_the_signature(
    raw: dict[str, object], needle: str
) -> None:
    with pytest.raises(SerializationError, match=needle):
        SIG.decode_args(raw)  # type: ignore[arg-type]


def test_without_the_code_values_are_stored_as_sent() -> None:
    text = encode_start_input(None, ({"name": "Ada"},), {"x": 1}, by_name=True)
    assert text == '{"args":[{"name":"Ada"}],"kwargs":{"x":1}}'
    with pytest.raises(SerializationError):
        encode_start_input(None, (object(),), {}, by_name=True)
